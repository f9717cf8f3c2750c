"""HTTP basic authentication for the /metrics endpoints (Prometheus's `basic_auth`).

The credentials live in a file of one line, `USER:PASSWORD` (mode 0600, read at start
while still root), never in the YAML; the comparison is constant-time. A WSGI wrapper
serves the sensor's prometheus-client server, an aiohttp middleware the collector's.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

Credentials = tuple[str, str]
CHALLENGE = 'Basic realm="madoc metrics", charset="UTF-8"'


class CredentialsError(ValueError):
    """The credentials file cannot be read or is not USER:PASSWORD."""


def read_credentials(path: Path) -> Credentials:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as err:
        raise CredentialsError(f"cannot read {path}: {err.strerror or err}") from err
    user, colon, password = text.partition(":")
    if not colon or not user or not password or "\n" in text:
        raise CredentialsError(f"{path}: expected one line USER:PASSWORD")
    return user, password


def authorized(header: str | None, credentials: Credentials) -> bool:
    """Whether an Authorization header carries these credentials."""
    scheme, _, encoded = (header or "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, ":".join(credentials).encode())


def wsgi_guard(app: Callable, credentials: Credentials) -> Callable:
    def guarded(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if authorized(environ.get("HTTP_AUTHORIZATION"), credentials):
            return app(environ, start_response)
        start_response("401 Unauthorized", [("WWW-Authenticate", CHALLENGE),
                                            ("Content-Type", "text/plain; charset=utf-8")])
        return [b"basic authentication required\n"]
    return guarded


def aiohttp_guard(credentials: Credentials) -> Callable:
    @web.middleware
    async def guarded(request: web.Request,
                      handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                      ) -> web.StreamResponse:
        if authorized(request.headers.get("Authorization"), credentials):
            return await handler(request)
        return web.Response(status=401, text="basic authentication required\n",
                            headers={"WWW-Authenticate": CHALLENGE})
    return guarded
