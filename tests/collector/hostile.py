"""Hostile traffic at a collector on loopback: what a compromised or broken client, or
an attacker on the province's network, might send while sensors report.

`hostile_load(url, sensor_token, requests)` sends, with 50 in flight: batches under
bogus tokens, admin reads under bogus tokens, gzip bombs (a small body that inflates past
`max_body_bytes`) and truncated gzip bodies under a real sensor token, and batches of
valid JSON naming another sensor; and meanwhile holds slow clients (connections that
trickle a request's headers, or promise a body and send a few bytes of it) open. Returns
the answers' status counts and the time taken. Bounded in count and time; traffic goes
to the given loopback address only.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import secrets
import time
from collections import Counter
from urllib.parse import urlsplit

import aiohttp

SLOW_CLIENTS = 200
SLOW_SECONDS = 5.0


def _bomb(limit: int) -> bytes:
    """Gzip of a JSON document that inflates to twice `limit` bytes (about 0.1 % of it
    compressed)."""
    return gzip.compress(b'{"sensor": "' + b"a" * (2 * limit) + b'"}', 9)


async def _slow_client(host: str, port: int, body: bool) -> bool:
    """Headers a few bytes a second, or a body promised and barely sent; then gone.
    Whether it got its connection (a slow client that never connected tested nothing)."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    try:
        head = (b"POST /api/v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                + secrets.token_hex(32).encode() + b"\r\nContent-Length: 1000000\r\n\r\n")
        if body:
            writer.write(head + b"{")
        deadline = time.monotonic() + SLOW_SECONDS
        for at in range(0, len(head), 4):
            if time.monotonic() > deadline or body:
                break
            writer.write(head[at:at + 4])
            await writer.drain()
            await asyncio.sleep(0.2)
        await asyncio.sleep(max(0.0, deadline - time.monotonic()))
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
    return True


async def _hostile(url: str, sensor_token: str, requests: int, max_body: int) -> Counter:
    parts = urlsplit(url)
    slow = [asyncio.create_task(_slow_client(parts.hostname or "127.0.0.1", parts.port or 0,
                                             n % 2 == 1)) for n in range(SLOW_CLIENTS)]
    bomb = _bomb(max_body)
    batch = {"sensor": "not-me", "stream": "s1", "sequence": 1, "alerts": [], "counts": [],
             "hosts_seen": [], "dropped_alerts": 0}             # valid, but not its own
    truncated = gzip.compress(json.dumps(batch).encode())[:-12]
    kinds = [
        ("POST", "/api/v1/events", secrets.token_hex(32), json.dumps(batch).encode(), False),
        ("GET", "/api/v1/hosts", secrets.token_hex(32), None, False),
        ("POST", "/api/v1/events", sensor_token, bomb, True),
        ("POST", "/api/v1/events", sensor_token, truncated, True),
        ("POST", "/api/v1/events", sensor_token, json.dumps(batch).encode(), False),
    ]
    statuses: Counter = Counter()
    queue: asyncio.Queue = asyncio.Queue()
    for n in range(requests):
        queue.put_nowait(kinds[n % len(kinds)])

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            method, path, token, body, zipped = queue.get_nowait()
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            if zipped:
                headers["Content-Encoding"] = "gzip"
            try:
                async with session.request(method, url + path, data=body,
                                           headers=headers) as answer:
                    await answer.read()
                    statuses[answer.status] += 1
            except (aiohttp.ClientError, OSError) as err:
                statuses[type(err).__name__] += 1

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout,
                                     connector=aiohttp.TCPConnector(limit=50)) as session:
        await asyncio.gather(*(worker(session) for _ in range(50)))
    statuses["slow clients connected"] = sum(await asyncio.gather(*slow))
    return statuses


def hostile_load(url: str, sensor_token: str, requests: int = 10_000,
                 max_body: int = 1 << 20) -> tuple[Counter, float]:
    started = time.monotonic()
    statuses = asyncio.run(_hostile(url, sensor_token, requests, max_body))
    return statuses, time.monotonic() - started
