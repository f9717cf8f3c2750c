"""Group commit on SQLite: batches that arrive while the database is busy are stored in
one transaction, each request still gets its own answer, a batch sent twice in one
group is stored once, and a batch that cannot be stored fails alone."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC
from pathlib import Path

from sensor.collector.ingest import GroupCommit
from sensor.collector.store import EVERYTHING, Store
from tests.collector.test_api import UNIT, batch


class CountingStore(Store):
    """A real SQLite store that remembers the size of each transaction it was given."""

    groups: list[int]

    def ingest_many(self, envelopes: list, now: float) -> list[bool]:
        self.groups.append(len(envelopes))
        return super().ingest_many(envelopes, now)


def store_in(tmp_path: Path) -> CountingStore:
    store = CountingStore(f"sqlite:///{tmp_path / 'c.db'}", UTC)
    store.groups = []
    store.migrate()
    store.add_unit(UNIT)
    store.add_sensor("gw1", UNIT, 0.0)
    return store


def submit_together(store: Store, docs: list[dict]) -> list:
    async def main() -> list:
        with ThreadPoolExecutor(max_workers=1) as executor:
            commit = GroupCommit(store, executor, parallel=False)
            return await asyncio.gather(*(commit.submit(doc) for doc in docs),
                                        return_exceptions=True)
    return asyncio.run(main())


def test_batches_arriving_together_share_one_commit(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    docs = [batch("gw1", sequence) for sequence in range(1, 9)] + [batch("gw1", 3)]
    assert submit_together(store, docs) == [True] * 8 + [False]
    assert store.groups == [9]
    [host] = [h for h in store.hosts(EVERYTHING) if h.ip == "192.168.1.10"]
    assert host.hits == 8 * 3
    assert store.sensors(EVERYTHING)[0]["batches"] == 8


def test_a_batch_that_cannot_be_stored_fails_alone(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    docs = [batch("gw1", 1), batch("unregistered", 1), batch("gw1", 2)]
    results = submit_together(store, docs)
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], Exception)
    assert store.groups[0] == 3                 # tried together, then one by one
    assert store.sensors(EVERYTHING)[0]["batches"] == 2


def test_a_request_given_up_while_waiting_does_not_stall_the_others(tmp_path: Path) -> None:
    store = store_in(tmp_path)

    async def main() -> list:
        with ThreadPoolExecutor(max_workers=1) as executor:
            commit = GroupCommit(store, executor, parallel=False)
            first = asyncio.ensure_future(commit.submit(batch("gw1", 1)))
            given_up = asyncio.ensure_future(commit.submit(batch("gw1", 2)))
            last = asyncio.ensure_future(commit.submit(batch("gw1", 3)))
            await asyncio.sleep(0)          # all three queued, the flush started
            given_up.cancel()
            return await asyncio.wait_for(asyncio.gather(first, last), timeout=10)

    assert asyncio.run(main()) == [True, True]
    assert store.sensors(EVERYTHING)[0]["batches"] == 3  # the cancelled request's batch: stored
