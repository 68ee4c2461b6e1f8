/* TokenID dashboard: a hash-routed single page over the JSON API. No framework, no build step, no network but /api. */
"use strict";

// ---------------------------------------------------------------------------------------------- helpers
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));
const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ESC[c]);
const FILTER_KEYS = ["range", "from", "to", "session", "tag", "provider", "deployment", "model", "status"];
const SERIES_COLORS = 10;

class ApiError extends Error {
  constructor(message, status) { super(message); this.status = status; }
}

// Money arrives as exact decimal text; it becomes a number only here, to be displayed. Fixed decimals by
// magnitude so a column lines up: cents from $1, 4 decimals below $1, 6 below 1 cent (and for single calls).
function money(v, { precise = false } = {}) {
  if (v === null || v === undefined || v === "") return "—";
  const n = Number(v);
  if (!Number.isFinite(n)) return esc(v);
  const sign = n < 0 ? "−" : "";
  const a = Math.abs(n);
  if (a === 0) return "$0.00";
  if (a < 0.0000005) return sign + "<$0.000001";
  const digits = a >= 1 ? 2 : a >= 0.01 && !precise ? 4 : 6;
  return sign + "$" + a.toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits });
}
const signed = (text) => String(text).replace(/^-/, "−");
const int = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en-US"));
function compact(v) {
  const n = Number(v || 0);
  if (Math.abs(n) < 10000) return n.toLocaleString("en-US");
  return n.toLocaleString("en-US", { notation: "compact", maximumFractionDigits: 2 });
}
function ms(v) {
  if (v === null || v === undefined) return "—";
  return v < 1000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(v < 10000 ? 2 : 1)} s`;
}
const pct = (part, whole) => (whole ? `${((100 * part) / whole).toFixed(1)}%` : "—");
const TIME = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", month: "short", day: "2-digit", hour: "2-digit",
  minute: "2-digit", second: "2-digit", hour12: false });
const DAY = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", month: "short", day: "numeric" });
const MONTH = new Intl.DateTimeFormat("en-GB", { timeZone: "UTC", month: "short", year: "numeric" });
const fmtTime = (iso) => (iso ? TIME.format(new Date(iso)) : "—");
function bucketLabel(key, bucket, long = false) {
  if (bucket === "month") return MONTH.format(new Date(key + "-01T00:00:00Z"));
  if (bucket === "day") return DAY.format(new Date(key + "T00:00:00Z"));
  const d = new Date(key + ":00:00Z");
  return long ? `${DAY.format(d)}, ${key.slice(11, 13)}:00` : `${key.slice(11, 13)}:00`;
}
function relative(iso, now) {
  if (!iso) return "never";
  let s = Math.max(0, (new Date(iso) - (now ? new Date(now) : new Date())) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60);
  return "in " + (d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : `${m}m`);
}
const modelName = (m) => (m === "" ? "(none)" : m);
const keyName = (k, group) => (k === null || k === undefined || k === "" ? (group === "session" ? "(no session)" : "(none)") : k);

// ---------------------------------------------------------------------------------------------- state + API
const state = { meta: null, view: "overview", sub: null, params: {}, timers: [], renderId: 0 };

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, qs] = raw.split("?");
  const parts = (path || "").split("/").filter(Boolean);
  state.view = parts[0] || "overview";
  state.sub = parts.length > 1 ? decodeURIComponent(parts.slice(1).join("/")) : null;
  state.params = Object.fromEntries(new URLSearchParams(qs || ""));
}
function hashFor(view, sub, params) {
  const qs = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== null && v !== undefined));
  return `#/${view}${sub ? "/" + encodeURIComponent(sub) : ""}${qs.toString() ? "?" + qs : ""}`;
}
function go(view, sub, extra = {}, { keep = true } = {}) {
  const base = keep ? filterParams() : {};
  location.hash = hashFor(view, sub, { ...base, ...extra });
}
function setParam(changes) {
  location.hash = hashFor(state.view, state.sub, { ...state.params, ...changes });
}
function filterParams() {
  const out = {};
  for (const k of FILTER_KEYS) if (state.params[k]) out[k] = state.params[k];
  if (!out.range && !out.from && !out.to) out.range = defaultRange();
  return out;
}
function defaultRange() {
  const m = state.meta;
  if (!m || !m.last_hour) return "30d";
  const age = (new Date(m.now) - new Date(m.last_hour + ":00:00Z")) / 86400000;
  return age > 29 ? "all" : "30d";
}
async function api(path, params = {}) {
  const qs = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== null && v !== undefined));
  const response = await fetch(path + (qs.toString() ? "?" + qs : ""), { headers: { accept: "application/json" },
    credentials: "same-origin" });
  let body = null;
  try { body = await response.json(); } catch { body = { error: response.statusText }; }
  if (!response.ok) throw new ApiError(body.error || `HTTP ${response.status}`, response.status);
  return body;
}
function csvHref(path, params = {}) {
  const qs = new URLSearchParams(Object.entries({ ...params, format: "csv" }).filter(([, v]) => v !== "" && v != null));
  return `${path}?${qs}`;
}
const csvButton = (path, params, label = "CSV") =>
  `<a class="btn small" href="${esc(csvHref(path, params))}" download data-csv>⤓ ${esc(label)}</a>`;

function notice(message) {
  const el = $("#notice");
  el.textContent = message || "";
  el.hidden = !message;
}
function clearTimers() {
  state.timers.forEach((t) => clearInterval(t));
  state.timers = [];
}

// ---------------------------------------------------------------------------------------------- building blocks
function empty(title, text, action) {
  return `<div class="empty"><h3>${esc(title)}</h3>${text ? `<p>${text}</p>` : ""}${action || ""}</div>`;
}
function emptyRange() {
  const m = state.meta;
  const span = m && m.first_hour ? `The journal has calls from ${esc(bucketLabel(m.first_hour, "hour", true))} to `
    + `${esc(bucketLabel(m.last_hour, "hour", true))} UTC.` : "The journal has no calls yet.";
  const action = m && m.first_hour ? `<button class="btn" data-action="all-time">Show all time</button>` : "";
  return empty("No calls match this range and these filters", span, action);
}
function statusBadge(status) { return `<span class="badge ${esc(status)}">${esc(status)}</span>`; }
function kpi(label, value, sub = "", attrs = "") {
  return `<div class="card kpi" ${attrs}><div class="label">${esc(label)}</div><div class="value">${value}</div>`
    + `<div class="sub">${sub}</div></div>`;
}
function delta(now, before, { lowerIsBetter = true, isMoney = false } = {}) {
  const a = Number(now || 0), b = Number(before || 0);
  if (!b) return a ? `<span class="muted">no calls in the previous period</span>` : "";
  const change = ((a - b) / b) * 100;
  if (Math.abs(change) < 0.05) return `<span class="muted">same as previous period</span>`;
  const up = change > 0;
  const cls = up === lowerIsBetter ? "up" : "down";
  return `<span class="delta ${cls}">${up ? "▲" : "▼"} ${Math.abs(change).toFixed(1)}%</span> `
    + `<span class="muted">vs ${isMoney ? money(before) : compact(before)} before</span>`;
}
function actionBadges(actions) {
  if (!actions || !actions.length) return "";
  return `<div class="actions">${actions.map((a) => {
    const moved = a.from || a.to ? ` ${esc(a.from || "?")} → ${esc(a.to || "?")}` : "";
    const shadow = a.shadow ? " (shadow)" : "";
    return `<span class="badge ${esc(a.action)}" title="${esc(a.reason || "")}">${esc(a.action)}${shadow} · `
      + `${esc(a.rule)}${moved}</span>`;
  }).join("")}</div>`;
}
function modelCell(c) {
  const model = c.model || c.model_requested || "";
  if (c.deployment && c.deployment !== model) return `${esc(c.deployment)} <span class="muted">→ ${esc(model)}</span>`;
  return esc(model || "—");
}
function costCell(c) {
  let out = money(c.cost_usd, { precise: true });
  if (c.invoice_cost_usd) out += `<div class="muted" title="invoice-calibrated">inv ${money(c.invoice_cost_usd, { precise: true })}</div>`;
  if (c.cache_hit) out += `<div class="badge accent" title="response cache hit">cache${c.saved_usd ? " · saved " + money(c.saved_usd, { precise: true }) : ""}</div>`;
  return out;
}
function usageBadge(source) {
  if (source === "reported") return `<span class="badge ok" title="usage reported by the API">reported</span>`;
  return `<span class="badge ${source === "estimated" ? "estimated" : ""}" title="${source === "estimated"
    ? "tokens counted locally (the API sent no usage)" : "no usage"}">${esc(source)}</span>`;
}

// A calls table (session page, live tail, enforcement): rows expand to every detail on click.
function callsTable(rows, { showSession = true, number = false, id = "" } = {}) {
  if (!rows.length) return empty("No calls", "");
  const head = `<tr>${number ? `<th class="num">#</th>` : ""}<th>Time (UTC)</th>${showSession ? "<th>Session</th>" : ""}`
    + `<th>Endpoint</th><th>Deployment → model</th><th class="num">In</th><th class="num">Cached</th>`
    + `<th class="num">Out</th><th class="num">Cost</th><th class="num">Latency</th><th class="num">TTFT</th>`
    + `<th>Status</th><th>Usage</th><th>Enforcement</th></tr>`;
  const body = rows.map((c, i) => callRow(c, i, { showSession, number })).join("");
  return `<div class="table-wrap"><table class="grid calls" ${id ? `id="${esc(id)}"` : ""}><thead>${head}</thead>`
    + `<tbody>${body}</tbody></table></div>`;
}
function callRow(c, i, { showSession, number, fresh = false }) {
  const status = c.status + (c.http_status && c.status !== "ok" ? ` ${c.http_status}` : "");
  return `<tr class="clickable call${fresh ? " fresh" : ""}" data-call="${esc(c.id)}">`
    + `${number ? `<td class="num muted">${i + 1}</td>` : ""}<td class="num">${esc(fmtTime(c.started_at))}</td>`
    + `${showSession ? `<td class="key">${c.session_id ? `<a href="${esc(hashFor("session", c.session_id, filterParams()))}">`
      + `${esc(c.session_id)}</a>` : `<span class="muted">—</span>`}</td>` : ""}`
    + `<td class="endpoint">${esc(c.endpoint)}${c.stream ? ` <span class="muted" title="streamed">⇢</span>` : ""}</td>`
    + `<td class="key">${modelCell(c)}</td><td class="num">${int(c.input_tokens)}</td>`
    + `<td class="num">${c.cached_input_tokens ? int(c.cached_input_tokens) : `<span class="muted">—</span>`}</td>`
    + `<td class="num">${int(c.output_tokens)}</td><td class="num">${costCell(c)}</td>`
    + `<td class="num">${ms(c.latency_ms)}</td><td class="num">${ms(c.ttft_ms)}</td>`
    + `<td>${statusBadge(c.status)}${status !== c.status ? ` <span class="muted">${esc(c.http_status)}</span>` : ""}</td>`
    + `<td>${usageBadge(c.usage_source)}</td><td>${actionBadges(c.enforcement)}</td></tr>`;
}
function callDetail(c, span) {
  const facts = [
    ["Call id", `<code>${esc(c.id)}</code>`], ["Request id", c.request_id ? `<code>${esc(c.request_id)}</code>` : "—"],
    ["Started / ended", `${esc(c.started_at)} → ${esc(c.ended_at || "—")}`],
    ["Provider", esc(c.provider)], ["Model requested / served", `${esc(c.model_requested || "—")} / ${esc(c.model_served || "—")}`],
    ["Priced as", `${esc(c.canonical_model || "—")} ${c.deployment_type ? `(${esc(c.deployment_type)})` : ""}`],
    ["Price source", esc(c.price_source || c.unpriced_reason || "—")],
    ["Tokens", `in ${int(c.input_tokens)} · cached ${int(c.cached_input_tokens || 0)} · out ${int(c.output_tokens)}`
      + ` · reasoning ${int(c.reasoning_tokens || 0)} (${esc(c.usage_source)})`],
    ["Cost (list)", money(c.cost_usd, { precise: true })],
    ["Cost (invoice-calibrated)", c.invoice_cost_usd ? money(c.invoice_cost_usd, { precise: true }) : "not reconciled"],
    ["Tags", c.tags ? Object.entries(c.tags).map(([k, v]) => `<span class="badge">${esc(k)}: ${esc(v)}</span>`).join(" ") : "—"],
  ];
  if (c.error_type || c.error_code) facts.push(["Error", `${esc(c.error_type || "")} ${esc(c.error_code || "")}`]);
  if (c.attempts) facts.push(["Attempts", int(c.attempts)]);
  if (c.route) facts.push(["Route", `<code>${esc(JSON.stringify(c.route))}</code>`]);
  if (c.enforcement) facts.push(["Enforcement", c.enforcement.map((a) => `${esc(a.rule)}: ${esc(a.action)}`
    + `${a.reason ? " — " + esc(a.reason) : ""}`).join("<br>")]);
  if (c.batch_id) facts.push(["Batch", `<code>${esc(c.batch_id)}</code>`]);
  return `<tr class="detail"><td colspan="${span}"><dl class="facts">${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${v}</dd>`)
    .join("")}</dl></td></tr>`;
}
function wireCallRows(root, rowsById) {
  root.addEventListener("click", (ev) => {
    if (ev.target.closest("a")) return;
    const tr = ev.target.closest("tr.call");
    if (!tr) return;
    const next = tr.nextElementSibling;
    if (next && next.classList.contains("detail")) { next.remove(); return; }
    const call = rowsById.get(tr.dataset.call);
    if (call) tr.insertAdjacentHTML("afterend", callDetail(call, tr.children.length));
  });
}

// ---------------------------------------------------------------------------------------------- chart
// Stacked bars in SVG, one colour per series, a tooltip per bucket. Values are numbers here (display only).
function stackedChart(el, data, { format, bucket }) {
  const series = data.series.map((s, i) => ({ key: s.key, values: s.values.map(Number),
    color: s.key === "(other)" ? `var(--s${SERIES_COLORS})` : `var(--s${(i % (SERIES_COLORS - 1)) + 1})` }));
  const n = data.buckets.length;
  const totals = data.buckets.map((_, i) => series.reduce((a, s) => a + s.values[i], 0));
  const max = Math.max(0, ...totals);
  const width = Math.max(el.clientWidth, 320), height = el.clientHeight || 280;
  const m = { l: 64, r: 8, t: 8, b: 26 };
  const w = width - m.l - m.r, h = height - m.t - m.b;
  const ticks = niceTicks(max);
  const top = ticks[ticks.length - 1] || 1;
  const bw = w / Math.max(n, 1);
  const gap = bw > 6 ? Math.min(bw * 0.22, 10) : 0;
  const y = (v) => m.t + h - (v / top) * h;
  let svg = `<svg viewBox="0 0 ${width} ${height}" role="img" aria-label="chart">`;
  svg += `<g class="axis">`;
  for (const t of ticks) {
    svg += `<line class="gridline" x1="${m.l}" x2="${width - m.r}" y1="${y(t)}" y2="${y(t)}"/>`;
    svg += `<text x="${m.l - 8}" y="${y(t) + 4}" text-anchor="end">${esc(format(t, true))}</text>`;
  }
  const every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(w / 74))));
  data.buckets.forEach((b, i) => {
    if (i % every) return;
    const label = bucket === "hour" && (i === 0 || b.endsWith("T00")) ? bucketLabel(b.slice(0, 10), "day")
      : bucketLabel(b, bucket);
    svg += `<text x="${m.l + i * bw + bw / 2}" y="${height - 6}" text-anchor="middle">${esc(label)}</text>`;
  });
  svg += `</g><g>`;
  data.buckets.forEach((_, i) => {
    let acc = 0;
    for (const s of series) {
      const v = s.values[i];
      if (v <= 0) continue;
      const y0 = y(acc), y1 = y(acc + v);
      svg += `<rect class="bar" x="${m.l + i * bw + gap / 2}" y="${y1}" width="${Math.max(bw - gap, 1)}" `
        + `height="${Math.max(y0 - y1, 0.5)}" fill="${s.color}" rx="${bw > 12 ? 2 : 0}"/>`;
      acc += v;
    }
  });
  svg += `</g><g>`;
  data.buckets.forEach((_, i) => {
    svg += `<rect class="hover-col" data-i="${i}" x="${m.l + i * bw}" y="${m.t}" width="${bw}" height="${h}"/>`;
  });
  svg += `</g></svg>`;
  el.innerHTML = svg;
  const tip = $("#tooltip");
  el.onmousemove = (ev) => {
    const col = ev.target.closest(".hover-col");
    if (!col) { tip.hidden = true; return; }
    const i = Number(col.dataset.i);
    const rows = series.filter((s) => s.values[i] > 0).sort((a, b) => b.values[i] - a.values[i])
      .map((s) => `<div class="row"><span><i class="swatch" style="background:${s.color}"></i>${esc(s.key)}</span>`
        + `<span>${esc(format(s.values[i]))}</span></div>`).join("");
    tip.innerHTML = `<div class="title">${esc(bucketLabel(data.buckets[i], bucket, true))}</div>${rows || '<div class="muted">nothing</div>'}`
      + (series.length > 1 ? `<div class="row"><b>Total</b><b>${esc(format(totals[i]))}</b></div>` : "");
    tip.hidden = false;
    const x = Math.min(ev.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
    tip.style.left = `${x}px`;
    tip.style.top = `${Math.max(ev.clientY - tip.offsetHeight - 10, 8)}px`;
  };
  el.onmouseleave = () => { tip.hidden = true; };
  return series;
}
function niceTicks(max) {
  if (max <= 0) return [0, 1];
  const raw = max / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw);
  const out = [];
  for (let v = 0; v <= max + step * 0.999; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}
function legend(series) {
  return `<div class="legend">${series.map((s) => `<span title="${esc(s.key)}"><i class="swatch" style="background:${s.color}"></i>`
    + `${esc(s.key)}</span>`).join("")}</div>`;
}

// ---------------------------------------------------------------------------------------------- views
const METRIC_LABELS = { cost: "Spend", tokens: "Tokens", calls: "Calls" };
const GROUP_LABELS = { none: "Total", model: "Model", deployment: "Deployment", provider: "Provider", status: "Status",
  session: "Session" };

async function viewOverview(root, rid) {
  const p = state.params;
  const f = filterParams();
  const metric = p.metric || "cost";
  const group = p.group || "model";
  const bucket = p.bucket || autoBucket(f);
  root.innerHTML = `<div class="page-head"><div><h1>Overview</h1><p class="muted" id="range-text"></p></div>`
    + `<div class="card-tools">${csvButton("/api/breakdown", { ...f, group })}</div></div>`
    + `<div class="grid-cards" id="kpis">${["Spend", "Calls", "Tokens", "Avg latency", "Errors", "Enforcement"]
      .map((l) => kpi(l, "…")).join("")}</div>`
    + `<section class="card"><div class="card-head"><h2 id="chart-title">${esc(METRIC_LABELS[metric])} over time</h2>`
    + `<div class="card-tools">${toggles("metric", METRIC_LABELS, metric)}`
    + `<select class="select-inline" data-param="group" aria-label="Split by">${groupOptions(group, true)}</select>`
    + `${toggles("bucket", { hour: "Hourly", day: "Daily", month: "Monthly" }, bucket)}</div></div>`
    + `<div class="chart" id="chart"><div class="skeleton"></div></div><div id="legend"></div></section>`
    + `<div class="two"><section class="card"><div class="card-head"><h2>By ${esc(groupLabel(group === "none" ? "model" : group))}</h2>`
    + `<div class="card-tools" id="bd-tools"></div></div><div id="breakdown"></div></section>`
    + `<section class="card"><div class="card-head"><h2>Top sessions</h2><div class="card-tools">`
    + `<a class="btn small" href="${esc(hashFor("sessions", null, { ...f, sort: "cost" }))}">All sessions →</a></div></div>`
    + `<div id="top-sessions"></div></section></div>`;
  const tableGroup = group === "none" ? "model" : group;
  const [summary, series, breakdown, sessions] = await Promise.all([
    api("/api/summary", f),
    api("/api/timeseries", { ...f, metric, group, bucket }),
    api("/api/breakdown", { ...f, group: tableGroup, limit: 50 }),
    api("/api/sessions", { ...f, sort: "cost", limit: 8 }),
  ]);
  if (rid !== state.renderId) return;
  $("#range-text").textContent = rangeText(summary.filters);
  const t = summary.totals, b = summary.previous;
  const enforcementSub = t.blocked || t.rewritten ? `${int(t.blocked)} blocked · ${int(t.rewritten)} rewritten` : "no blocked or rewritten calls";
  const invoiceSub = t.invoice_cost_usd ? ` · invoice ${money(t.invoice_cost_usd)} for ${int(t.invoiced_calls)} calls` : "";
  $("#kpis").innerHTML = [
    kpi("Spend", money(t.cost_usd), delta(t.cost_usd, b.cost_usd, { isMoney: true }) + invoiceSub, 'data-kpi="spend"'),
    kpi("Calls", compact(t.calls), delta(t.calls, b.calls) + (t.cache_hits ? ` · ${int(t.cache_hits)} cache hits` : "")
      + (t.estimated ? ` · ${int(t.estimated)} estimated` : ""), 'data-kpi="calls"'),
    kpi("Tokens", compact(t.tokens), `${compact(t.input_tokens)} in · ${compact(t.output_tokens)} out`
      + (t.cached_input_tokens ? ` · ${compact(t.cached_input_tokens)} cached` : ""), 'data-kpi="tokens"'),
    kpi("Avg latency", ms(t.avg_latency_ms), t.avg_ttft_ms ? `TTFT ${ms(t.avg_ttft_ms)} (streams)` : ""),
    kpi("Errors", int(t.errors), `${pct(t.errors, t.calls)} of calls${t.aborted ? ` · ${int(t.aborted)} aborted` : ""}`),
    kpi("Enforcement", int(t.blocked + t.rewritten), enforcementSub, 'data-kpi="enforcement"'),
  ].join("");
  if (!t.calls) {
    $("#chart").innerHTML = emptyRange();
    $("#breakdown").innerHTML = empty("Nothing to break down", "");
    $("#top-sessions").innerHTML = empty("No sessions in this range", "");
    return;
  }
  const fmt = metric === "cost" ? (v, axis) => (axis ? axisMoney(v) : money(v)) : (v) => compact(v);
  const drawn = stackedChart($("#chart"), series, { format: fmt, bucket });
  $("#legend").innerHTML = drawn.length > 1 ? legend(drawn) : "";
  state.redraw = () => stackedChart($("#chart"), series, { format: fmt, bucket });
  $("#breakdown").innerHTML = breakdownTable(breakdown, tableGroup);
  $("#bd-tools").innerHTML = csvButton("/api/breakdown", { ...f, group: tableGroup });
  $("#top-sessions").innerHTML = sessions.rows.length ? sessionsTable(sessions.rows, { compactCols: true })
    : empty("No sessions in this range", "Calls made without a session id are counted in the totals only.");
}
function axisMoney(v) {  // axis ticks: short, no trailing zeros ($0.0025, $1.50 -> $1.5, $12k)
  if (v === 0) return "$0";
  if (v >= 1000) return "$" + compact(v);
  return "$" + Number(v.toPrecision(3)).toLocaleString("en-US", { maximumFractionDigits: 8 });
}
function autoBucket(f) {
  if (f.range === "1h" || f.range === "24h") return "hour";
  if (f.range === "365d") return "month";
  if (f.range === "all" && state.meta && state.meta.first_hour) {
    const days = (new Date(state.meta.last_hour + ":00:00Z") - new Date(state.meta.first_hour + ":00:00Z")) / 86400000;
    return days <= 3 ? "hour" : days > 400 ? "month" : "day";
  }
  if (f.from && f.to && (new Date(f.to) - new Date(f.from)) / 86400000 <= 3) return "hour";
  return "day";
}
function rangeText(filters) {
  const from = new Date(filters.from), to = new Date(filters.to);
  return `${TIME.format(from).slice(0, -3)} – ${TIME.format(to).slice(0, -3)} UTC`;
}
function toggles(param, labels, current) {
  return `<span class="card-tools" role="group">${Object.entries(labels).map(([k, l]) =>
    `<button type="button" class="btn small" data-set="${esc(param)}" data-value="${esc(k)}" aria-pressed="${k === current}">`
    + `${esc(l)}</button>`).join("")}</span>`;
}
function groupLabel(group) { return group.startsWith("tag:") ? `tag ${group.slice(4)}` : (GROUP_LABELS[group] || group).toLowerCase(); }
function groupOptions(current, withNone) {
  const keys = [...(withNone ? ["none"] : []), "model", "deployment", "provider", "status", "session",
    ...((state.meta && state.meta.options.tag_keys) || []).map((k) => `tag:${k}`)];
  return keys.map((k) => `<option value="${esc(k)}" ${k === current ? "selected" : ""}>`
    + `${esc(k === "none" ? "No split" : "By " + groupLabel(k))}</option>`).join("");
}
function breakdownTable(data, group) {
  if (!data.rows.length) return empty("Nothing to break down", "");
  const total = Number(data.total.cost_usd || 0);
  const rows = data.rows.map((r) => {
    const share = total ? (100 * Number(r.cost_usd || 0)) / total : 0;
    const name = esc(keyName(r.key, group));
    const link = group === "session" && r.key ? `<a href="${esc(hashFor("session", r.key, filterParams()))}">${name}</a>`
      : `<a href="#" data-filter="${esc(group)}" data-value="${esc(r.key ?? "")}" title="Filter by this">${name}</a>`;
    return `<tr><td class="key">${link}</td><td class="num">${int(r.calls)}</td><td class="num">${compact(r.tokens)}</td>`
      + `<td class="num">${money(r.cost_usd)}</td><td class="num"><span class="share">${share.toFixed(1)}%`
      + `<span class="bar"><i style="width:${share.toFixed(1)}%"></i></span></span></td>`
      + `<td class="num">${r.errors ? `<span class="badge error">${int(r.errors)}</span>` : `<span class="muted">0</span>`}</td></tr>`;
  }).join("");
  return `<div class="table-wrap"><table class="grid"><thead><tr><th>${esc(groupLabel(group))}</th><th class="num">Calls</th>`
    + `<th class="num">Tokens</th><th class="num">Spend</th><th class="num">Share</th><th class="num">Errors</th></tr></thead>`
    + `<tbody>${rows}</tbody><tfoot><tr><td>Total</td><td class="num">${int(data.total.calls)}</td>`
    + `<td class="num">${compact(data.total.tokens)}</td><td class="num">${money(data.total.cost_usd)}</td><td></td>`
    + `<td class="num">${int(data.total.errors)}</td></tr></tfoot></table></div>`;
}

const SESSION_COLUMNS = [
  ["session", "Session", false], ["first_call", "First call", true], ["last_call", "Last call", true],
  ["calls", "Calls", true], ["tokens", "Tokens", true], ["cost", "Spend", true], ["errors", "Errors", true],
  ["blocked", "Blocked", true], ["latency", "Avg latency", true],
];
function sessionsTable(rows, { compactCols = false, sort = null, order = "desc" } = {}) {
  const cols = compactCols ? SESSION_COLUMNS.filter(([k]) => ["session", "calls", "cost", "last_call"].includes(k))
    : SESSION_COLUMNS;
  const head = cols.map(([k, label, num]) => `<th class="${num ? "num " : ""}${compactCols ? "" : "sortable"}`
    + `${sort === k ? " sorted " + order : ""}" ${compactCols ? "" : `data-sort="${k}"`}>${esc(label)}</th>`).join("")
    + (compactCols ? "" : "<th>Models</th>");
  const cell = {
    session: (r) => `<td class="key"><a href="${esc(hashFor("session", r.session_id, filterParams()))}">${esc(r.session_id)}</a></td>`,
    first_call: (r) => `<td class="num">${esc(fmtTime(r.first_call))}</td>`,
    last_call: (r) => `<td class="num">${esc(fmtTime(r.last_call))}</td>`,
    calls: (r) => `<td class="num">${int(r.calls)}</td>`,
    tokens: (r) => `<td class="num">${int(r.tokens)}</td>`,
    cost: (r) => `<td class="num">${money(r.cost_usd)}</td>`,
    errors: (r) => `<td class="num">${r.errors ? `<span class="badge error">${int(r.errors)}</span>` : `<span class="muted">0</span>`}</td>`,
    blocked: (r) => `<td class="num">${r.blocked ? `<span class="badge blocked">${int(r.blocked)}</span>` : `<span class="muted">0</span>`}</td>`,
    latency: (r) => `<td class="num">${ms(r.avg_latency_ms)}</td>`,
  };
  const body = rows.map((r) => `<tr class="clickable session-row" data-session="${esc(r.session_id)}">`
    + cols.map(([k]) => cell[k](r)).join("")
    + (compactCols ? "" : `<td class="key muted" title="${esc(r.models.join(", "))}">${esc(r.models.join(", "))}</td>`)
    + "</tr>").join("");
  return `<div class="table-wrap"><table class="grid sessions"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table></div>`;
}

async function viewSessions(root, rid) {
  const p = state.params;
  const f = filterParams();
  const sort = p.sort || "last_call", order = p.order || "desc";
  const limit = 50, offset = Number(p.offset || 0);
  root.innerHTML = `<div class="page-head"><div><h1>Sessions</h1><p class="muted" id="range-text"></p></div>`
    + `<div class="card-tools">${csvButton("/api/sessions", { ...f, sort, order, limit: 1000 })}</div></div>`
    + `<section class="card"><div id="sessions"><div class="skeleton"></div></div><div class="card-head" id="pager"></div></section>`;
  const data = await api("/api/sessions", { ...f, sort, order, limit, offset });
  if (rid !== state.renderId) return;
  $("#range-text").textContent = `${int(data.total)} sessions active · ${rangeText(data.filters)}`
    + (data.whole_sessions ? " · whole-session totals" : " · totals of the matching calls in the range");
  if (!data.rows.length) {
    $("#sessions").innerHTML = data.total ? empty("No more sessions", "") : emptyRange();
    return;
  }
  $("#sessions").innerHTML = sessionsTable(data.rows, { sort, order });
  const last = offset + data.rows.length;
  $("#pager").innerHTML = `<span class="muted">${int(offset + 1)}–${int(last)} of ${int(data.total)}</span><span class="card-tools">`
    + `<button class="btn small" data-page="${Math.max(0, offset - limit)}" ${offset ? "" : "disabled"}>← Previous</button>`
    + `<button class="btn small" data-page="${last}" ${last < data.total ? "" : "disabled"}>Next →</button></span>`;
}

async function viewSession(root, rid) {
  const id = state.sub;
  root.innerHTML = `<div class="page-head"><div><p><a href="${esc(hashFor("sessions", null, filterParams()))}">← Sessions</a></p>`
    + `<h1>Session <span class="mono">${esc(id)}</span></h1><p class="muted" id="session-span"></p></div>`
    + `<div class="card-tools">${csvButton(`/api/sessions/${encodeURIComponent(id)}`, {}, "CSV of calls")}</div></div>`
    + `<div class="grid-cards" id="kpis"></div><section class="card"><div class="card-head"><h2>Calls in order</h2>`
    + `<span class="muted">click a call for every detail</span></div><div id="calls"><div class="skeleton"></div></div></section>`;
  let data;
  try {
    data = await api(`/api/sessions/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status === 404) {
      $("#kpis").innerHTML = "";
      $("#calls").innerHTML = empty("No calls journaled for this session", `Session ids are case-sensitive: <code>${esc(id)}</code>`);
      return;
    }
    throw err;
  }
  if (rid !== state.renderId) return;
  const t = data.totals;
  $("#session-span").textContent = `${fmtTime(data.first_call)} → ${fmtTime(data.last_call)} UTC`
    + (data.truncated ? " · first 5,000 calls shown" : "");
  const sources = Object.entries(data.usage_sources).map(([k, v]) => `${int(v)} ${k}`).join(" · ");
  $("#kpis").innerHTML = [
    kpi("Spend", money(t.cost_usd), t.invoice_cost_usd ? `invoice ${money(t.invoice_cost_usd)}` : (t.unpriced ? `${int(t.unpriced)} unpriced` : "")),
    kpi("Calls", int(t.calls), sources),
    kpi("Tokens", compact(t.tokens), `${compact(t.input_tokens)} in · ${compact(t.output_tokens)} out`),
    kpi("Avg latency", ms(t.avg_latency_ms), t.avg_ttft_ms ? `TTFT ${ms(t.avg_ttft_ms)}` : ""),
    kpi("Errors", int(t.errors), t.aborted ? `${int(t.aborted)} aborted` : ""),
    kpi("Enforcement", int(t.blocked + t.rewritten), `${int(t.blocked)} blocked · ${int(t.rewritten)} rewritten`),
  ].join("");
  $("#calls").innerHTML = callsTable(data.calls, { showSession: false, number: true, id: "session-calls" });
  wireCallRows($("#calls"), new Map(data.calls.map((c) => [c.id, c])));
}

async function viewCalls(root, rid) {
  const p = state.params;
  const f = filterParams();
  const kind = p.kind || "all";
  const live = p.live !== "off";
  root.innerHTML = `<div class="page-head"><div><h1>Live calls</h1><p class="muted"><span class="live-dot ${live ? "on" : ""}" id="live-dot"></span>`
    + `<span id="live-text">${live ? "Live: new calls appear as they are journaled" : "Paused"}</span></p></div>`
    + `<div class="card-tools">${toggles("kind", { all: "All", errors: "Errors", blocked: "Blocked", rewritten: "Rewritten" }, kind)}`
    + `<button class="btn small" data-set="live" data-value="${live ? "off" : "on"}">${live ? "Pause" : "Resume"}</button>`
    + `${csvButton("/api/calls", { ...f, kind, limit: 1000 })}</div></div>`
    + `<section class="card"><div id="calls"><div class="skeleton"></div></div><div class="card-head" id="older"></div></section>`;
  const data = await api("/api/calls", { ...f, kind, limit: 100 });
  if (rid !== state.renderId) return;
  const rows = data.rows;
  const byId = new Map(rows.map((c) => [c.id, c]));
  const holder = $("#calls");
  const draw = () => {
    holder.innerHTML = rows.length ? callsTable(rows, { id: "live-calls" })
      : (f.range === "all" || kind !== "all" ? empty("No calls yet", "Waiting for new calls…") : emptyRange());
  };
  draw();
  wireCallRows(holder, byId);
  let newest = rows.length ? rows.reduce((a, c) => (c.id > a ? c.id : a), rows[0].id) : "";
  if (!newest) {
    const latest = await api("/api/calls", { range: "all", limit: 1 });
    newest = latest.rows.length ? latest.rows[0].id : "";
  }
  const olderBox = $("#older");
  const showOlder = (more) => {
    olderBox.innerHTML = more ? `<span></span><button class="btn small" id="load-older">Load older calls</button>` : "";
  };
  showOlder(data.more);
  olderBox.addEventListener("click", async (ev) => {
    if (!ev.target.closest("#load-older")) return;
    const page = await api("/api/calls", { ...f, kind, limit: 100, before: rows[rows.length - 1].id });
    page.rows.forEach((c) => { rows.push(c); byId.set(c.id, c); });
    draw();
    showOlder(page.more);
  });
  if (!live) return;
  const { range, from, to, ...tailFilters } = f;
  const poll = async () => {
    if (document.hidden || rid !== state.renderId) return;
    try {
      const fresh = await api("/api/calls", { ...tailFilters, kind, after: newest, limit: 200 });
      if (rid !== state.renderId || !fresh.rows.length) return;
      newest = fresh.rows[fresh.rows.length - 1].id;
      const tbody = $("#live-calls tbody");
      for (const c of fresh.rows) {
        rows.unshift(c);
        byId.set(c.id, c);
      }
      if (!tbody) { draw(); return; }
      const html = fresh.rows.slice().reverse().map((c, i) => callRow(c, i, { showSession: true, number: false, fresh: true })).join("");
      tbody.insertAdjacentHTML("afterbegin", html);
      $("#live-text").textContent = `Live: ${fresh.rows.length} new call${fresh.rows.length > 1 ? "s" : ""} at ${TIME.format(new Date()).slice(-8)} UTC`;
    } catch (err) {
      $("#live-text").textContent = `Live updates paused: ${err.message}`;
    }
  };
  state.timers.push(setInterval(poll, 2000));
}

async function viewEnforcement(root, rid) {
  const f = filterParams();
  root.innerHTML = `<div class="page-head"><div><h1>Enforcement</h1><p class="muted" id="range-text"></p></div>`
    + `<div class="card-tools">${csvButton("/api/enforcement", f, "CSV of rules")}</div></div>`
    + `<div class="grid-cards" id="kpis"></div>`
    + `<section class="card"><div class="card-head"><h2>Budgets</h2><div class="card-tools">${csvButton("/api/budgets", {})}</div></div>`
    + `<div id="budgets"><div class="skeleton"></div></div></section>`
    + `<section class="card"><div class="card-head"><h2>Actions by rule</h2></div><div id="rules"></div></section>`
    + `<section class="card"><div class="card-head"><h2>Blocked calls <small class="muted">latest 50</small></h2><div class="card-tools">`
    + `${csvButton("/api/calls", { ...f, kind: "blocked", limit: 1000 })}</div></div><div id="blocked"></div></section>`
    + `<section class="card"><div class="card-head"><h2>Rewritten calls <small class="muted">latest 50</small></h2><div class="card-tools">`
    + `${csvButton("/api/calls", { ...f, kind: "rewritten", limit: 1000 })}</div></div><div id="rewritten"></div></section>`;
  const [data, budgets] = await Promise.all([api("/api/enforcement", { ...f, limit: 50 }), api("/api/budgets")]);
  if (rid !== state.renderId) return;
  $("#range-text").textContent = rangeText(data.filters);
  const count = (action) => data.rules.filter((r) => r.action === action && !r.shadow).reduce((a, r) => a + r.calls, 0);
  const shadow = data.rules.filter((r) => r.shadow).reduce((a, r) => a + r.calls, 0);
  $("#kpis").innerHTML = [
    kpi("Blocked", int(count("block")), "calls stopped before they were sent", 'data-kpi="blocked"'),
    kpi("Rewritten", int(count("rewrite") + count("downgrade")), "sent to a cheaper deployment or model"),
    kpi("Warnings", int(count("warn")), "allowed, over a soft limit"),
    kpi("Shadow", int(shadow), "would have acted (shadow mode)"),
  ].join("");
  $("#budgets").innerHTML = budgetsTable(budgets);
  $("#rules").innerHTML = data.rules.length ? `<div class="table-wrap"><table class="grid"><thead><tr><th>Rule</th><th>Type</th>`
    + `<th>Action</th><th class="num">Calls</th><th class="num">Spend of those calls</th></tr></thead><tbody>`
    + data.rules.map((r) => `<tr><td>${esc(r.rule)}</td><td class="muted">${esc(r.type || "—")}</td>`
      + `<td><span class="badge ${esc(r.action)}">${esc(r.action)}${r.shadow ? " (shadow)" : ""}</span></td>`
      + `<td class="num">${int(r.calls)}</td><td class="num">${money(r.cost_usd)}</td></tr>`).join("")
    + `</tbody></table></div>` : empty("No enforcement actions in this range", "Rules that block, rewrite or warn show up here.");
  const small = (rows, title) => (rows.length ? callsTable(rows, { id: title }) : empty(`No ${title} calls in this range`, ""));
  $("#blocked").innerHTML = small(data.blocked, "blocked");
  $("#rewritten").innerHTML = small(data.rewritten, "rewritten");
  wireCallRows($("#blocked"), new Map(data.blocked.map((c) => [c.id, c])));
  wireCallRows($("#rewritten"), new Map(data.rewritten.map((c) => [c.id, c])));
}
function budgetsTable(data) {
  if (!data.rows.length) {
    return empty("No budgets yet", data.configured ? "The configured budgets have not counted any call yet."
      : "Budgets appear once calls count against them (shared SQLite counters). Start the dashboard with "
      + "<code>--config rules.toml</code> to see their limits.");
  }
  const amount = (r, v) => (v === null || v === undefined ? "—" : r.unit === "usd" ? money(v) : int(v) + (r.unit === "tokens" ? " tok" : ""));
  const rows = data.rows.map((r) => {
    const limit = Number(r.limit || 0), spent = Number(r.spent || 0), reserved = Number(r.reserved || 0);
    const bar = limit ? `<div class="progress ${spent + reserved > limit ? "over" : ""}" title="${esc(r.used_pct)}% used">`
      + `<div class="spent" style="width:${Math.min(100, (100 * spent) / limit).toFixed(1)}%"></div>`
      + `<div class="reserved" style="width:${Math.min(100, (100 * reserved) / limit).toFixed(1)}%"></div></div>` : "";
    return `<tr><td>${esc(r.budget)}</td><td class="key mono">${esc(r.scope)}</td><td>${esc(r.window)}</td>`
      + `<td class="num">${amount(r, r.spent)}</td><td class="num">${amount(r, r.reserved)}</td>`
      + `<td class="num">${amount(r, r.limit)}</td><td>${bar}<span class="muted">${r.used_pct !== null ? esc(r.used_pct) + "%" : ""}</span></td>`
      + `<td>${r.rolling ? "rolling" : r.resets_at ? `${esc(relative(r.resets_at, data.now))} <span class="muted">(${esc(fmtTime(r.resets_at))})</span>` : "never"}</td>`
      + `<td>${r.action ? `<span class="badge">${esc(r.action)}</span>` : ""}</td></tr>`;
  }).join("");
  return `<div class="table-wrap"><table class="grid budgets"><thead><tr><th>Budget</th><th>Scope</th><th>Window</th>`
    + `<th class="num">Spent</th><th class="num">Reserved</th><th class="num">Limit</th><th>Used</th><th>Resets</th><th>On limit</th>`
    + `</tr></thead><tbody>${rows}</tbody></table></div>`
    + (data.configured ? "" : `<p class="muted">Limits are unknown: start the dashboard with <code>--config</code> (or set `
      + `<code>TOKENID_ENFORCEMENT</code>) to see them.</p>`);
}

async function viewReconciliation(root, rid) {
  const p = state.params;
  const f = filterParams();
  const params = { ...f, run: p.run || "", line_status: p.line_status || "" };
  root.innerHTML = `<div class="page-head"><div><h1>Reconciliation</h1><p class="muted" id="run-text"></p></div>`
    + `<div class="card-tools" id="run-tools"></div></div><div id="recon"><div class="skeleton"></div></div>`;
  const data = await api("/api/reconciliation", params);
  if (rid !== state.renderId) return;
  const box = $("#recon");
  const repriced = data.repriced_calls.length ? `<section class="card"><div class="card-head"><h2>List vs invoice-calibrated cost</h2>`
    + `<span class="muted">calls re-priced at the rates the invoices imply</span></div>${repricedTable(data.repriced_calls)}</section>` : "";
  if (!data.run) {
    box.innerHTML = `<section class="card">${empty("No reconciliation yet", "Run <code>tokenid reconcile</code> with an Azure cost "
      + "export to compare the journal with the invoice; its results appear here.")}</section>` + repriced;
    return;
  }
  const run = data.run;
  $("#run-text").textContent = `Run ${run.id} · ${fmtTime(run.created_at)} UTC · ${run.source || ""}`
    + (run.period_from ? ` · ${run.period_from} → ${run.period_to || "…"}` : "");
  $("#run-tools").innerHTML = `<select class="select-inline" data-param="run" aria-label="Run">${data.runs.map((r) =>
    `<option value="${esc(r.id)}" ${r.id === run.id ? "selected" : ""}>${esc(fmtTime(r.created_at))} · ${esc(r.id)}</option>`).join("")}</select>`
    + csvButton("/api/reconciliation", params, "CSV of lines");
  const sum = (rows, k) => rows.reduce((a, r) => a + Number(r[k] || 0), 0);
  const invoice = sum(data.by_status, "invoice_cost_usd"), journal = sum(data.by_status, "journal_cost_usd");
  const variance = sum(data.by_status, "variance_usd");
  const statusCount = Object.fromEntries(data.by_status.map((r) => [r.key, r.lines]));
  box.innerHTML = `<div class="grid-cards">${[
    kpi("Invoice (USD)", money(invoice), `${int(sum(data.by_status, "lines"))} lines`),
    kpi("Journal (list)", money(journal), ""),
    kpi("Variance", money(variance), journal ? `${signed(((100 * variance) / journal).toFixed(2))}% of journal` : ""),
    kpi("Lines off", int((statusCount.variance || 0) + (statusCount.invoice_only || 0) + (statusCount.journal_only || 0)
      + (statusCount.unknown_meter || 0)), Object.entries(statusCount).map(([k, v]) => `${int(v)} ${esc(k.replace("_", " "))}`).join(" · ")),
  ].join("")}</div>`
    + `<div class="two"><section class="card"><div class="card-head"><h2>By day</h2></div>${varianceTable(data.by_day, "Day")}</section>`
    + `<section class="card"><div class="card-head"><h2>By account</h2></div>${varianceTable(data.by_account, "Account")}</section></div>`
    + `<section class="card"><div class="card-head"><h2>By meter</h2></div>${varianceTable(data.by_meter, "Meter")}</section>`
    + `<section class="card"><div class="card-head"><h2>Lines</h2><div class="card-tools"><select class="select-inline" data-param="line_status" aria-label="Line status">`
    + `<option value="">every status</option>${["matched", "variance", "invoice_only", "journal_only", "capacity", "unknown_meter"]
      .map((s) => `<option value="${s}" ${s === data.line_status ? "selected" : ""}>${s.replace("_", " ")}</option>`).join("")}</select></div></div>`
    + `${linesTable(data)}</section>` + repriced;
}
function varianceTable(rows, label) {
  if (!rows.length) return empty("No lines", "");
  return `<div class="table-wrap"><table class="grid"><thead><tr><th>${esc(label)}</th><th class="num">Lines</th><th class="num">Invoice</th>`
    + `<th class="num">Journal</th><th class="num">Variance</th><th class="num">%</th></tr></thead><tbody>${rows.map((r) =>
      `<tr><td class="key">${esc(r.key)}</td><td class="num">${int(r.lines)}</td><td class="num">${money(r.invoice_cost_usd)}</td>`
      + `<td class="num">${money(r.journal_cost_usd)}</td><td class="num">${money(r.variance_usd)}</td>`
      + `<td class="num">${r.variance_pct === null ? "—" : esc(signed(r.variance_pct)) + "%"}</td></tr>`).join("")}</tbody></table></div>`;
}
function linesTable(data) {
  if (!data.lines.length) return empty("No lines with this status", "");
  const more = data.lines_total > data.lines.length ? `<p class="muted">${int(data.lines.length)} of ${int(data.lines_total)} lines shown; the CSV has them all.</p>` : "";
  return `<div class="table-wrap"><table class="grid"><thead><tr><th>Day</th><th>Account</th><th>Meter</th><th>Status</th>`
    + `<th class="num">Invoice</th><th class="num">Journal</th><th class="num">Variance</th><th class="num">%</th><th>Note</th></tr></thead><tbody>`
    + data.lines.map((l) => `<tr><td class="num">${esc(l.day)}</td><td class="key">${esc(l.account_name || l.account_id)}</td>`
      + `<td class="key">${esc(l.meter_name)}</td><td><span class="badge ${esc(l.status)}">${esc(l.status.replace("_", " "))}</span></td>`
      + `<td class="num">${money(l.invoice_cost_usd)}${l.currency && l.currency !== "USD" && l.invoice_cost ? `<div class="muted">${esc(l.invoice_cost)} ${esc(l.currency)}</div>` : ""}</td>`
      + `<td class="num">${money(l.journal_cost_usd)}</td><td class="num">${money(l.variance_usd)}</td>`
      + `<td class="num">${l.variance_pct === null || l.variance_pct === undefined ? "—" : signed(Number(l.variance_pct).toFixed(2)) + "%"}</td>`
      + `<td class="muted">${esc(l.note || "")}</td></tr>`).join("") + `</tbody></table></div>${more}`;
}
function repricedTable(rows) {
  return `<div class="table-wrap"><table class="grid"><thead><tr><th>Day</th><th class="num">Calls</th><th class="num">List price</th>`
    + `<th class="num">Invoice-calibrated</th><th class="num">Difference</th></tr></thead><tbody>${rows.map((r) =>
      `<tr><td class="num">${esc(r.day)}</td><td class="num">${int(r.calls)}</td><td class="num">${money(r.list_cost_usd)}</td>`
      + `<td class="num">${money(r.invoice_cost_usd)}</td><td class="num">${money(r.variance_usd)}</td></tr>`).join("")}</tbody></table></div>`;
}

// ---------------------------------------------------------------------------------------------- filters + routing
function fillSelect(id, values, current, label = (v) => v) {
  const el = $(id);
  const options = [`<option value="">any</option>`].concat(values.map((v) => {
    const value = v === "" ? "(none)" : v;
    return `<option value="${esc(value)}">${esc(label(value))}</option>`;
  }));
  el.innerHTML = options.join("");
  el.value = current || "";
}
function syncFilterForm() {
  const p = state.params;
  const m = state.meta;
  const custom = !p.range && (p.from || p.to);
  $("#f-range").value = custom ? "custom" : (p.range || defaultRange());
  $$(".custom-range").forEach((el) => { el.hidden = !custom; });
  $("#f-from").value = (p.from || "").slice(0, 16);
  $("#f-to").value = (p.to || "").slice(0, 16);
  $("#f-session").value = p.session || "";
  const [tagKey, ...rest] = (p.tag || "").split(":");
  fillSelect("#f-tag-key", m.options.tag_keys, tagKey);
  $("#f-tag-value").value = rest.join(":");
  fillSelect("#f-provider", m.options.provider, p.provider);
  fillSelect("#f-deployment", m.options.deployment, p.deployment);
  fillSelect("#f-model", m.options.model, p.model, modelName);
  fillSelect("#f-status", ["ok", "error", "blocked", "aborted"], p.status);
  const filters = filterParams();
  $$(".tabs a").forEach((a) => {
    a.classList.toggle("active", a.dataset.view === (state.view === "session" ? "sessions" : state.view));
    a.href = hashFor(a.dataset.view, null, filters);  // the filters follow you from view to view
  });
}
function readFilterForm() {
  const form = $("#filters");
  const v = (name) => form.elements[name].value.trim();
  const out = {};
  const range = v("range");
  if (range === "custom") {
    if (v("from")) out.from = v("from");
    if (v("to")) out.to = v("to");
  } else {
    out.range = range;
  }
  for (const k of ["session", "provider", "deployment", "model", "status"]) if (v(k)) out[k] = v(k);
  if (v("tag_key")) out.tag = `${v("tag_key")}:${v("tag_value")}`;
  return out;
}
const VIEWS = { overview: viewOverview, sessions: viewSessions, session: viewSession, calls: viewCalls,
  enforcement: viewEnforcement, reconciliation: viewReconciliation };

async function render() {
  clearTimers();
  parseHash();
  state.redraw = null;
  const rid = ++state.renderId;
  if (!VIEWS[state.view]) { location.hash = "#/overview"; return; }
  syncFilterForm();
  notice("");
  document.title = `${state.view === "session" ? "Session " + state.sub : state.view[0].toUpperCase() + state.view.slice(1)} · TokenID`;
  try {
    await VIEWS[state.view]($("#view"), rid);
  } catch (err) {
    if (rid !== state.renderId) return;
    notice(err.status === 401 ? "Your access token is missing or expired: open the URL printed by `tokenid dashboard`."
      : `Could not load this view: ${err.message}`);
  }
}

function wire() {
  $("#filters").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const keep = Object.fromEntries(Object.entries(state.params).filter(([k]) => !FILTER_KEYS.includes(k) && k !== "offset"));
    location.hash = hashFor(state.view, state.sub, { ...keep, ...readFilterForm() });
  });
  $("#f-range").addEventListener("change", (ev) => {
    const custom = ev.target.value === "custom";
    $$(".custom-range").forEach((el) => { el.hidden = !custom; });
    if (!custom) $("#filters").requestSubmit();
  });
  $("#f-clear").addEventListener("click", () => {
    location.hash = hashFor(state.view === "session" ? "sessions" : state.view, null, { range: defaultRange() });
  });
  for (const id of ["#f-provider", "#f-deployment", "#f-model", "#f-status"]) {
    $(id).addEventListener("change", () => $("#filters").requestSubmit());
  }
  const view = $("#view");
  view.addEventListener("click", (ev) => {
    const t = ev.target;
    const set = t.closest("[data-set]");
    if (set) { setParam({ [set.dataset.set]: set.dataset.value, offset: "" }); return; }
    const sort = t.closest("th[data-sort]");
    if (sort) {
      const same = state.params.sort === sort.dataset.sort || (!state.params.sort && sort.dataset.sort === "last_call");
      const order = same && (state.params.order || "desc") === "desc" ? "asc" : "desc";
      setParam({ sort: sort.dataset.sort, order, offset: "" });
      return;
    }
    const page = t.closest("[data-page]");
    if (page) { setParam({ offset: page.dataset.page }); return; }
    const filter = t.closest("a[data-filter]");
    if (filter) {
      ev.preventDefault();
      const g = filter.dataset.filter;
      const value = filter.dataset.value === "" ? "(none)" : filter.dataset.value;
      setParam(g.startsWith("tag:") ? { tag: `${g.slice(4)}:${value}` } : { [g]: value });
      return;
    }
    if (t.closest("[data-action='all-time']")) {
      const { from, to, ...rest } = state.params;
      location.hash = hashFor(state.view, state.sub, { ...rest, range: "all" });
      return;
    }
    const row = t.closest("tr.session-row");
    if (row && !t.closest("a")) go("session", row.dataset.session);
  });
  view.addEventListener("change", (ev) => {
    const sel = ev.target.closest("select[data-param]");
    if (sel) setParam({ [sel.dataset.param]: sel.value, offset: "" });
  });
  window.addEventListener("hashchange", render);
  let resize = null;
  window.addEventListener("resize", () => {
    clearTimeout(resize);
    resize = setTimeout(() => state.redraw && state.redraw(), 120);
  });
}

async function boot() {
  wire();
  try {
    state.meta = await api("/api/meta");
  } catch (err) {
    notice(err.status === 401 ? "An access token is required: open the URL printed by `tokenid dashboard`."
      : `Could not read the journal: ${err.message}`);
    return;
  }
  $("#journal-name").textContent = state.meta.journal;
  if (!location.hash || location.hash === "#" || location.hash === "#/") {
    history.replaceState(null, "", hashFor("overview", null, { range: defaultRange() }));
  }
  await render();
  document.body.dataset.ready = "1";
}
document.addEventListener("DOMContentLoaded", boot);
