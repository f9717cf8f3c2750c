"""Remote list sources: fetch over HTTPS with a cached last good copy.

A source with `url:` is fetched with aiohttp: conditional GET (ETag,
If-Modified-Since) against the cached copy, a timeout, and a size cap. A new
body replaces the cache atomically (write, fsync, rename). When the server
cannot be reached, answers an error, or sends too much, the last good copy is
used and a warning says why, so a restart works offline; with no copy yet,
the source fails. Plain `http://` is refused unless the source says
`insecure: true`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

import aiohttp

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_BYTES = 256 * 2**20


class FetchError(Exception):
    """The source could not be fetched and no cached copy exists."""


@dataclass(frozen=True)
class Fetched:
    text: str
    from_cache: bool
    warning: str = ""          # why the cached copy was used instead of a fresh one


def cache_paths(cache_dir: Path, url: str) -> tuple[Path, Path]:
    key = hashlib.sha256(url.encode()).hexdigest()[:32]
    return cache_dir / f"{key}.list", cache_dir / f"{key}.meta.json"


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    with open(temporary, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)


async def _get(url: str, headers: dict[str, str], timeout: float, max_bytes: int,
               ssl_context: ssl.SSLContext | bool) -> tuple[int, bytes, dict[str, str]]:
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(timeout=client_timeout) as session, \
            session.get(url, headers=headers, ssl=ssl_context) as response:
        if response.status != 200:
            return response.status, b"", {}
        if response.content_length is not None and response.content_length > max_bytes:
            raise FetchError(f"{response.content_length:,} bytes is over the {max_bytes:,} cap")
        body = bytearray()
        async for chunk in response.content.iter_chunked(1 << 16):
            body += chunk
            if len(body) > max_bytes:
                raise FetchError(f"more than the {max_bytes:,}-byte cap")
        kept = {k: response.headers[k] for k in ("ETag", "Last-Modified") if k in response.headers}
        return 200, bytes(body), kept


def fetch(url: str, cache_dir: Path, timeout: float = DEFAULT_TIMEOUT,
          max_bytes: int = DEFAULT_MAX_BYTES, ca_file: str | None = None,
          insecure: bool = False) -> Fetched:
    """The list's text: fresh, not modified (cached), or the cached copy after a failure."""
    if url.startswith("http://") and not insecure:
        raise FetchError("plain http:// is refused; use https:// or set insecure: true")
    body_path, meta_path = cache_paths(cache_dir, url)
    cached = body_path.exists()
    meta = json.loads(meta_path.read_text()) if cached and meta_path.exists() else {}
    headers = {}
    if cached and meta.get("ETag"):
        headers["If-None-Match"] = meta["ETag"]
    if cached and meta.get("Last-Modified"):
        headers["If-Modified-Since"] = meta["Last-Modified"]
    ssl_context: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) \
        if url.startswith("https://") else False
    try:
        status, body, kept = asyncio.run(_get(url, headers, timeout, max_bytes, ssl_context))
    except (aiohttp.ClientError, TimeoutError, OSError, FetchError) as err:
        problem = str(err) or type(err).__name__
        if isinstance(err, TimeoutError):
            problem = f"no answer within {timeout:g} s"
        return _cached(body_path, cached, f"fetch failed ({problem})")
    if status == 304 and cached:
        return Fetched(body_path.read_text(encoding="utf-8", errors="replace"), True)
    if status != 200:
        return _cached(body_path, cached, f"server answered HTTP {status}")
    _write_atomically(body_path, body)
    _write_atomically(meta_path, json.dumps(kept).encode())
    return Fetched(body.decode("utf-8", errors="replace"), False)


def _cached(body_path: Path, cached: bool, problem: str) -> Fetched:
    if not cached:
        raise FetchError(f"{problem}, and there is no cached copy yet")
    return Fetched(body_path.read_text(encoding="utf-8", errors="replace"), True,
                   f"{problem}; using the cached copy from an earlier fetch")
