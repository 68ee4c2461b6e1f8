"""The dashboard's Starlette application: the API routes, the API docs, and the single-page front end.

Every API handler runs in Starlette's thread pool (journal reads block). Errors map to status codes here:
a bad parameter is a 400 with its message, an unknown session or run a 404, an unreadable journal a 503;
nothing a client sends produces a 500.
"""

from __future__ import annotations

import contextlib
import html
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..enforce.rules import Budget
from ..errors import JournalError, QueryError
from .api import ENDPOINTS, Context, Endpoint, accepted, openapi, render
from .auth import AccessGuard
from .params import Query
from .queries import Reader
from .reader import is_postgres_url

__all__ = ["create_app"]

log = logging.getLogger("tokenid.dashboard")
_STATIC = Path(str(resources.files("tokenid.dashboard") / "static"))


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers={"cache-control": "no-store"})


def _filename(endpoint: Endpoint, request: Request) -> str:
    parts = ["tokenid", endpoint.name, *request.path_params.values()]
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", "-".join(parts))[:120]


def _handler(endpoint: Endpoint, ctx: Context) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        try:
            query = Query(request.query_params.multi_items(), accepted(endpoint))
            fmt = query.fmt()
            data = await run_in_threadpool(endpoint.handler, request, query, ctx)
            return render(endpoint, data, fmt, _filename(endpoint, request))
        except QueryError as exc:
            return _error(400, str(exc))
        except LookupError as exc:
            return _error(404, str(exc.args[0]) if exc.args else "not found")
        except JournalError as exc:
            log.error("dashboard: %s", exc)
            return _error(503, str(exc))
        except Exception:
            log.exception("dashboard: %s failed", endpoint.path)
            return _error(500, "internal error (see the dashboard's log)")

    return handle


def _docs_page() -> str:
    """A readable, self-contained rendering of the OpenAPI document (no external Swagger assets)."""
    spec = openapi()
    out = ["<!doctype html><html lang=en><head><meta charset=utf-8><title>TokenID dashboard API</title>",
           '<meta name=viewport content="width=device-width,initial-scale=1">',
           '<link rel=stylesheet href="/static/app.css"></head><body class="docs"><main class="page">',
           f"<h1>{html.escape(spec['info']['title'])} <small>{html.escape(spec['info']['version'])}</small></h1>",
           f"<p>{html.escape(spec['info']['description'])}</p>",
           '<p><a href="/api/openapi.json">openapi.json</a> · <a href="/">back to the dashboard</a></p>']
    for path, item in spec["paths"].items():
        op = item["get"]
        out.append(f'<section class="card" id="{html.escape(op["operationId"])}"><h2><code>GET {html.escape(path)}'
                   f"</code></h2><p>{html.escape(op['summary'])}</p>")
        if op["parameters"]:
            out.append('<table class="grid"><thead><tr><th>parameter</th><th>in</th><th>accepted</th>'
                       "<th>description</th></tr></thead><tbody>")
            for p in op["parameters"]:
                schema = p["schema"]
                accepted_values = ", ".join(map(str, schema.get("enum", []))) or schema["type"]
                default = f" (default {schema['default']})" if "default" in schema else ""
                out.append(f"<tr><td><code>{html.escape(p['name'])}</code></td><td>{p['in']}</td>"
                           f"<td>{html.escape(accepted_values + default)}</td>"
                           f"<td>{html.escape(p['description'])}</td></tr>")
            out.append("</tbody></table>")
        out.append("</section>")
    out.append("</main></body></html>")
    return "".join(out)


def create_app(journal: str | Path, *, token: str | None = None, budgets: Sequence[Budget] = (),
               now: Callable[[], datetime] | None = None, extra_hosts: Sequence[str] = ()) -> AccessGuard:
    """The dashboard over one journal (schema v4+), read-only: a SQLite path or a ``postgresql://`` URL.

    ``token``: require this access token on every request (``None``: serve localhost requests only).
    ``budgets``: budget rules from the enforcement config, for limits and reset times.
    """
    ctx = Context(db=Reader(journal if is_postgres_url(journal) else Path(journal)), budgets=list(budgets),
                  now=now or (lambda: datetime.now(timezone.utc)))
    # path parameters take any text, slashes included (session ids such as "user/42")
    routes: list[BaseRoute] = [Route(ep.path.replace("}", ":path}"), _handler(ep, ctx), methods=["GET"], name=ep.name)
                               for ep in ENDPOINTS]

    async def spec(request: Request) -> Response:
        return JSONResponse(openapi())

    async def docs(request: Request) -> Response:
        return HTMLResponse(_docs_page())

    async def index(request: Request) -> Response:
        return FileResponse(_STATIC / "index.html", headers={"cache-control": "no-store"})

    async def api_not_found(request: Request) -> Response:
        return _error(404, f"no API endpoint {request.url.path}; see /api/docs")

    routes += [
        Route("/api/openapi.json", spec, methods=["GET"]),
        Route("/api/docs", docs, methods=["GET"]),
        Route("/api/{rest:path}", api_not_found),
        Mount("/static", StaticFiles(directory=_STATIC), name="static"),
        Route("/", index, methods=["GET"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        return _error(status, str(detail))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            ctx.db.close()  # on shutdown: a PostgreSQL journal gets its sessions back

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error}, lifespan=lifespan)
    return AccessGuard(app, token=token, extra_hosts=extra_hosts)
