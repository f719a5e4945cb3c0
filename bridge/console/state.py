"""The console's running state: its store, the request log, and the tasks that keep the
registry and the token usage up to date."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import structlog
from litestar import Litestar

from bridge.console.activity import RequestLog
from bridge.console.config import ConsoleConfig
from bridge.console.gate import KeyLimiter
from bridge.console.keys import KeyStore
from bridge.console.kv import KV, SessionStore, open_kv
from bridge.console.saved_models import ModelStore, poll, sync_registry
from bridge.console.security import LoginThrottle
from bridge.http.limit_counts import LocalCounts, RedisCounts
from bridge.routing import ModelRegistry

log = structlog.get_logger("bridge.console")
SESSION_STORE = "bridge_console_sessions"
DRAIN_SECONDS = 0.5


class Console:
    def __init__(self, config: ConsoleConfig, admin_key: str) -> None:
        self.config = config
        self.admin_key = admin_key
        self.started = time.time()
        self.requests = RequestLog(config.ring_size)
        self.sessions = SessionStore()
        self.kv: KV | None = None
        self.keys: KeyStore | None = None
        self.models: ModelStore | None = None
        self.registry: ModelRegistry | None = None
        # Whether API requests' keys are looked up at all: only once console keys (or a
        # playground token) exist, so set-ups that never use them pay nothing.
        self.lookups = False
        self.throttle = LoginThrottle()
        counts = RedisCounts(config.store_url) if config.redis else LocalCounts()
        self.limiter = KeyLimiter(counts)

    async def keys_changed(self) -> None:
        assert self.keys is not None
        assert self.models is not None
        assert self.registry is not None
        issued = await self.keys.issued()
        self.lookups = self.lookups or issued
        await sync_registry(self.registry, self.models, issued)

    async def _issued(self) -> bool:
        assert self.keys is not None
        issued = await self.keys.issued()
        self.lookups = self.lookups or issued
        return issued

    async def _drain(self) -> None:
        """Token usage per console key, and the minute buckets, from the ring."""
        while True:
            await asyncio.sleep(DRAIN_SECONDS)
            fresh = self.requests.fresh()
            self.requests.count(fresh)
            for entry in fresh:
                if entry.key_sha256 and self.keys is not None:
                    try:
                        await self.keys.add_usage(entry.key_sha256, entry.total_tokens)
                    except Exception as exc:
                        log.warning("console_usage_not_counted", error=str(exc))

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Litestar) -> AsyncIterator[None]:
        self.kv = await open_kv(
            self.config.store_url, self.config.data_dir, memory=self.config.memory
        )
        self.keys = KeyStore(self.kv)
        self.models = ModelStore(self.kv)
        self.sessions.kv = self.kv
        app.stores.register(SESSION_STORE, self.sessions, allow_override=True)
        self.registry = app.state.registry
        app.state.console = self
        await sync_registry(self.registry, self.models, await self._issued())
        tasks = [
            asyncio.create_task(poll(self.registry, self.models, self._issued)),
            asyncio.create_task(self._drain()),
        ]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.limiter.close()
            await self.kv.close()
