"""Who may talk to the dashboard: an access token when it listens beyond this machine, a Host check when not.

Bound to a loopback address with no token, only requests addressed to localhost are served (a web page
elsewhere cannot reach the dashboard through DNS rebinding). With a token, every request must carry it:
``Authorization: Bearer``, the cookie set on first visit, or ``?token=`` (a page visit with it is redirected
to the same URL without it, so the token does not stay in the address bar or history). The token is never
logged: this middleware logs method, path and status only.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import secrets
import time
from collections.abc import Iterable
from http.cookies import SimpleCookie
from typing import Final
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["COOKIE", "TOKEN_ENV", "AccessGuard", "is_loopback", "new_token"]

log = logging.getLogger("tokenid.dashboard")

TOKEN_ENV: Final = "TOKENID_DASHBOARD_TOKEN"
COOKIE: Final = "tokenid_dashboard"
_LOCAL_NAMES: Final = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
_HEADERS: Final = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
     b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
]


def new_token() -> str:
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(raw: str) -> str:
    if raw.startswith("["):
        return raw[: raw.find("]") + 1] if "]" in raw else raw
    return raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw


class AccessGuard:
    """ASGI middleware: token or local-Host check, security headers, and a token-free access log."""

    def __init__(self, app: ASGIApp, *, token: str | None, extra_hosts: Iterable[str] = ()) -> None:
        self.app = app
        self.token = token
        self.hosts = _LOCAL_NAMES | set(extra_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_seen = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status_seen
            if message["type"] == "http.response.start":
                status_seen = message["status"]
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        try:
            denial = self._check(scope)
            if denial is not None:
                await denial(send_with_headers)
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            log.info("%s %s %s %.1fms", scope.get("method"), scope.get("path"), status_seen,
                     (time.perf_counter() - started) * 1000)

    def _check(self, scope: Scope) -> _Response | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token is None:
            host = _host_name(headers.get("host", ""))
            if host not in self.hosts:
                return _Response(403, {"error": f"requests to host {host!r} are refused: the dashboard answers on "
                                                "localhost only unless it runs with an access token"})
            return None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        given = headers.get("authorization", "")
        candidates = [given[7:].strip()] if given.lower().startswith("bearer ") else []
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except Exception:  # a malformed Cookie header is the same as none
            cookie = SimpleCookie()
        if COOKIE in cookie:
            candidates.append(cookie[COOKIE].value)
        from_query = [v for k, v in query if k == "token"]
        candidates += from_query
        if not any(hmac.compare_digest(c.encode(), self.token.encode()) for c in candidates if c):
            return _Response(401, {"error": "an access token is required: open the URL printed by `tokenid "
                                            "dashboard` (it carries ?token=...), or send Authorization: Bearer "
                                            "<token>"}, [(b"www-authenticate", b'Bearer realm="tokenid"')])
        path: str = scope.get("path", "/")
        if from_query and scope.get("method") == "GET" and not path.startswith("/api/"):
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = path + ("?" + rest if rest else "")
            cookie_header = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
            return _Response(303, None, [(b"location", location.encode()), (b"set-cookie", cookie_header.encode())])
        return None


class _Response:
    """A small JSON (or empty) response sent by the guard itself."""

    def __init__(self, status: int, body: dict[str, str] | None,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.status = status
        self.body = b"" if body is None else json.dumps(body).encode()
        self.headers = [*(headers or []), (b"content-length", str(len(self.body)).encode()),
                        (b"cache-control", b"no-store")]
        if body is not None:
            self.headers.append((b"content-type", b"application/json"))

    async def __call__(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        await send({"type": "http.response.body", "body": self.body})
