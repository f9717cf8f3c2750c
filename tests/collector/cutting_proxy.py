"""A TCP proxy on loopback that cuts an HTTP exchange exactly where a test says.

Between a collector reporting upward and the collector above: it passes bytes both
ways, and once armed it cuts the next request that allows it, closing both sides:
`after_body_bytes=N` once N bytes of a request's body have gone through (the batch
travelling), or `before_answer=True` once a whole request has gone through and the
answer starts coming back (the batch stored above, its acknowledgement lost). `cuts`
records each cut, so a test asserts that it happened where it meant.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass


@dataclass
class Cut:
    kind: str                   # "body" or "answer"
    body_bytes: int             # of the request's body passed on before the cut
    content_length: int


class CuttingProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.cuts: list[Cut] = []
        self.requests_passed = 0        # whole requests passed on to the target
        self._after_body_bytes: int | None = None
        self._before_answer = False
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        ready.wait(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def arm(self, after_body_bytes: int | None = None, before_answer: bool = False) -> None:
        """Cut the next request that reaches the point (once)."""
        self._after_body_bytes, self._before_answer = after_body_bytes, before_answer

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._connection, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        ready.set()
        self._loop.run_forever()

    async def _connection(self, client_in: asyncio.StreamReader,
                          client_out: asyncio.StreamWriter) -> None:
        server_in, server_out = await asyncio.open_connection("127.0.0.1", self.target_port)
        exchange = _Exchange()
        writers = (client_out, server_out)
        upstream = asyncio.create_task(self._requests(client_in, server_out, exchange, writers))
        downstream = asyncio.create_task(self._answers(server_in, client_out, exchange, writers))
        await asyncio.wait((upstream, downstream), return_when=asyncio.FIRST_COMPLETED)
        for task in (upstream, downstream):
            task.cancel()
        for writer in writers:
            writer.close()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        exchange: _Exchange, writers: tuple) -> None:
        while data := await reader.read(16384):
            while data:
                data, passed = exchange.client_bytes(data, self._after_body_bytes)
                writer.write(passed)
                self.requests_passed += exchange.take_completed()
                if exchange.cut_in_body:
                    self._cut("body", exchange)
                    return
            await writer.drain()

    async def _answers(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       exchange: _Exchange, writers: tuple) -> None:
        while data := await reader.read(16384):
            if self._before_answer and exchange.request_complete:
                self._cut("answer", exchange)
                return
            writer.write(data)
            await writer.drain()

    def _cut(self, kind: str, exchange: _Exchange) -> None:
        self.cuts.append(Cut(kind, exchange.body_seen, exchange.content_length))
        self._after_body_bytes, self._before_answer = None, False


class _Exchange:
    """Where the client's byte stream stands: in a request's head, or in its body."""

    def __init__(self) -> None:
        self.head = b""
        self.content_length = 0
        self.body_seen = 0
        self.in_body = False
        self.request_complete = False
        self.cut_in_body = False
        self._completed = 0

    def take_completed(self) -> int:
        """Requests completed since the last call."""
        done, self._completed = self._completed, 0
        return done

    def client_bytes(self, data: bytes, cut_at: int | None) -> tuple[bytes, bytes]:
        """(what is left of `data`, what to pass on now)."""
        if not self.in_body:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return b"", data
            head, rest = self.head[:end + 4], self.head[end + 4:]
            passed_head = data[:len(data) - len(rest)]
            self.head, self.in_body, self.body_seen = b"", True, 0
            self.request_complete = False
            self.content_length = next(
                (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")), 0)
            if not self.content_length:
                self.in_body, self.request_complete = False, True
                self._completed += 1
            return rest, passed_head
        room = self.content_length - self.body_seen
        if cut_at is not None and cut_at < self.content_length:
            room = min(room, cut_at - self.body_seen)
        chunk, rest = data[:room], data[room:]
        self.body_seen += len(chunk)
        if cut_at is not None and self.body_seen == cut_at < self.content_length:
            self.cut_in_body = True
            return b"", chunk
        if self.body_seen == self.content_length:
            self.in_body, self.request_complete = False, True
            self._completed += 1
        return rest, chunk
