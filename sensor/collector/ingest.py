"""Storing sensors' batches: group commit on SQLite, parallel transactions on PostgreSQL."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from sensor.collector.store import Store


class GroupCommit:
    """Batches that arrive while the database is busy are stored together, in one
    transaction, when it is free: on SQLite each commit is an fsync, and one fsync
    for several batches is what lets a single writer keep up with many sensors.
    Each request still gets its own answer (stored or duplicate). If a group
    fails, its batches are stored one by one, so one bad batch fails alone.
    PostgreSQL commits in parallel threads instead (`parallel`): a transaction over
    several batches would take row locks in an order another collector might cross.
    """

    def __init__(self, store: Store, executor: ThreadPoolExecutor, parallel: bool) -> None:
        self.store, self.executor, self.parallel = store, executor, parallel
        self.pending: list[tuple[dict, asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None     # held: the loop keeps only weak refs

    async def submit(self, doc: dict) -> bool:
        loop = asyncio.get_running_loop()
        if self.parallel:
            return await loop.run_in_executor(self.executor, self.store.ingest, doc,
                                              time.time())
        answer = loop.create_future()
        self.pending.append((doc, answer))
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await answer

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:     # no await between this test and the task's end
            group, self.pending = self.pending, []
            try:
                results = await loop.run_in_executor(
                    self.executor, self.store.ingest_many, [doc for doc, _ in group],
                    time.time())
            except Exception:       # noqa: BLE001 - retried one by one below
                await self._one_by_one(group)
                continue
            for (_, answer), stored in zip(group, results, strict=True):
                if not answer.done():       # its request may have been cancelled
                    answer.set_result(stored)

    async def _one_by_one(self, group: list[tuple[dict, asyncio.Future]]) -> None:
        loop = asyncio.get_running_loop()
        for doc, answer in group:
            try:
                stored = await loop.run_in_executor(self.executor, self.store.ingest, doc,
                                                    time.time())
            except Exception as err:    # noqa: BLE001 - the request answers 500
                if not answer.done():
                    answer.set_exception(err)
            else:
                if not answer.done():
                    answer.set_result(stored)
