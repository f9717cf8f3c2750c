"""A collector inside this process, on a loopback port, for the demo."""

from __future__ import annotations

import asyncio
import socket
import threading

from aiohttp import web

from sensor.collector.app import build_app
from sensor.collector.config import CollectorConfig
from sensor.collector.store import Store


class EmbeddedCollector:
    """Serves `build_app` on 127.0.0.1 from a thread with its own event loop."""

    def __init__(self, config: CollectorConfig, store: Store) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._app = build_app(config, store)
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(self._app, access_log=None)
        self._thread = threading.Thread(target=self._loop.run_forever, name="madoc-collector",
                                        daemon=True)

    def start(self) -> EmbeddedCollector:
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._thread.start()
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
