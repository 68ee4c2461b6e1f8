"""A fake Microsoft Entra ID on 127.0.0.1 for credential tests: real HTTPS and HTTP servers, Entra's shapes.

``EntraServer`` speaks the OAuth2 v2.0 endpoints MSAL uses (tenant discovery document, token endpoint;
client credentials with a secret or a signed assertion, federated tokens) over HTTPS with a self-signed
certificate made here, and the Azure Instance Metadata Service (IMDS) managed-identity endpoint over
plain HTTP, as on a VM. Every request is recorded. Tokens are JWT-shaped, one per client id.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def self_signed(common_name: str, path: Path, *, server: bool) -> tuple[Path, Path]:
    """A self-signed certificate and its key as PEM files (for the HTTPS server, or a client certificate)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1)))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    cert = builder.sign(key, hashes.SHA256())
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def fake_jwt(claims: dict[str, Any]) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    return f"{part({'typ': 'JWT', 'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"


def token_for(client_id: str) -> str:
    """The access token the fake issues to ``client_id`` (stable, so a simulator can accept exactly it)."""
    return fake_jwt({"aud": "https://cognitiveservices.azure.com", "appid": client_id, "tid": "fake"})


def decode_jwt(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


class EntraServer:
    """Entra's OAuth2 endpoints over HTTPS and IMDS over HTTP; ``requests`` lists what each received."""

    def __init__(self, workdir: Path, *, expires_in: int = 3599) -> None:
        self.cert, self.key = self_signed("localhost", workdir / "entra-tls", server=True)
        self.expires_in = expires_in
        self.requests: list[dict[str, Any]] = []
        self.reject_secret: str | None = None
        self._lock = threading.Lock()
        self._https = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        self._https.socket = context.wrap_socket(self._https.socket, server_side=True)
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (self._https, self._http)]

    @property
    def authority(self) -> str:
        return f"https://127.0.0.1:{self._https.server_address[1]}"

    @property
    def imds(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> EntraServer:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        for server in (self._https, self._http):
            server.shutdown()
            server.server_close()

    def token_requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r for r in self.requests if r["kind"] in ("oauth2", "imds")]

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _json(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                parts = url.path.strip("/").split("/")
                if url.path == "/metadata/identity/oauth2/token":
                    query = {k: v[0] for k, v in parse_qs(url.query).items()}
                    server._record({"kind": "imds", "query": query, "headers": dict(self.headers)})
                    if self.headers.get("Metadata") != "true":
                        self._json(400, {"error": "invalid_request", "error_description": "Required metadata "
                                         "header not specified"})
                        return
                    client_id = query.get("client_id") or query.get("object_id") or query.get("msi_res_id") \
                        or "system-assigned"
                    now = int(time.time())
                    self._json(200, {  # IMDS answers with strings for the numbers
                        "access_token": token_for(client_id), "client_id": client_id,
                        "expires_in": str(server.expires_in), "expires_on": str(now + server.expires_in),
                        "ext_expires_in": str(server.expires_in), "not_before": str(now),
                        "resource": query.get("resource", ""), "token_type": "Bearer"})
                    return
                if len(parts) >= 3 and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
                    tenant = parts[0]
                    server._record({"kind": "discovery", "tenant": tenant})
                    base = f"{server.authority}/{tenant}"
                    self._json(200, {
                        "token_endpoint": f"{base}/oauth2/v2.0/token",
                        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                        "issuer": f"{base}/v2.0", "tenant_region_scope": "EU",
                        "end_session_endpoint": f"{base}/oauth2/v2.0/logout"})
                    return
                self._json(404, {"error": "not_found", "path": url.path})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                parts = url.path.strip("/").split("/")
                if len(parts) == 4 and parts[1:] == ["oauth2", "v2.0", "token"]:
                    server._record({"kind": "oauth2", "tenant": parts[0], "form": form})
                    if server.reject_secret is not None and form.get("client_secret") == server.reject_secret:
                        self._json(401, {"error": "invalid_client", "error_description": "AADSTS7000215: Invalid "
                                         "client secret provided.", "error_codes": [7000215]})
                        return
                    self._json(200, {"token_type": "Bearer", "expires_in": server.expires_in,
                                     "ext_expires_in": server.expires_in,
                                     "access_token": token_for(form.get("client_id", "?"))})
                    return
                self._json(404, {"error": "not_found", "path": url.path})

        return Handler
