"""The response store in Redis, shared by replicas: keys of its own beside the conversations'.

    dify-bridge:response:<id>                     → StoredResponse as JSON
    dify-bridge:response-head:<conversation>      → id of its latest stored response
    dify-bridge:response-item:<owner>:<item id>   → StoredItem as JSON

Each key has the TTL; the size bound is Redis's own ``maxmemory`` (as for conversations). The
owner (a hash of the caller's key, no ``:`` in it) is part of an item's key, so a lookup with
another key's owner cannot reach it whatever the id holds.

Responses written before items had keys get them from a one-off background pass when a bridge
with this code first opens the store (``dify-bridge:response-items-indexed`` marks it done;
a failed pass is tried again at the next start). Until it ends, or for a response an older
replica writes during a rolling upgrade, an `item_reference` to such an answer is a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import msgspec
import redis.asyncio as redis
import structlog
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bridge.conversations.redis_store import DEFAULT_TIMEOUT, MAX_CONNECTIONS, NAMESPACE, POOL_WAIT
from bridge.conversations.response_records import (
    StoredItem,
    StoredResponse,
    decode_item,
    decode_response,
    items_of,
    lookup_ids,
)
from bridge.conversations.store import StoreUnavailable

log = structlog.get_logger("bridge.responses")

_SCAN_BATCH = 500

# The backfill's write of one response's items, atomic so that it cannot bring back the items
# of a response deleted (or expired) since the pass read it: nothing unless the response is
# still there, and then with its remaining TTL; NX never overwrites what a current bridge wrote.
# KEYS[1] the response, KEYS[2..] its items; ARGV[i] the JSON of KEYS[i + 1].
_INDEX_SCRIPT = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl <= 0 then
    return 0
end
for i = 2, #KEYS do
    redis.call('SET', KEYS[i], ARGV[i - 1], 'PX', ttl, 'NX')
end
return 1
"""


class RedisResponseStore:
    def __init__(self, client: redis.Redis, *, ttl: float, namespace: str = NAMESPACE) -> None:
        self._client = client
        self._ttl_ms = max(1, round(ttl * 1000))
        self._namespace = namespace
        self._closed = False
        self._backfill: asyncio.Task[int] | None = None
        self._index_script = client.register_script(_INDEX_SCRIPT)

    @classmethod
    def from_url(cls, url: str, *, ttl: float) -> RedisResponseStore:
        # The conversation store's pool rules: short timeouts, one retry, bounded connections.
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT,
            decode_responses=True,
            socket_timeout=DEFAULT_TIMEOUT,
            socket_connect_timeout=DEFAULT_TIMEOUT,
            retry=Retry(NoBackoff(), retries=1),
        )
        return cls(redis.Redis.from_pool(pool), ttl=ttl)

    async def get(self, response_id: str) -> StoredResponse | None:
        with self._unavailable_on_error():
            raw = await self._client.get(self._key(response_id))
        return decode_response(raw) if raw is not None else None

    async def put(self, record: StoredResponse) -> None:
        with self._unavailable_on_error():
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self._key(record.id), msgspec.json.encode(record), px=self._ttl_ms)
                if record.conversation_id:
                    pipe.set(self._head_key(record.conversation_id), record.id, px=self._ttl_ms)
                for item in items_of(record):
                    key = self._item_key(record.owner, item.id)
                    pipe.set(key, msgspec.json.encode(item), px=self._ttl_ms)
                await pipe.execute()

    async def head(self, conversation_id: str) -> str | None:
        with self._unavailable_on_error():
            return await self._client.get(self._head_key(conversation_id))

    async def items(self, owner: str, item_ids: list[str]) -> dict[str, StoredItem]:
        ids = lookup_ids(item_ids)
        if not ids:
            return {}
        with self._unavailable_on_error():
            values = await self._client.mget([self._item_key(owner, i) for i in ids])
        found = {}
        for item_id, raw in zip(ids, values, strict=True):
            item = decode_item(raw) if raw is not None else None
            if item is not None:
                found[item_id] = item
        return found

    async def delete(self, response_id: str) -> bool:
        with self._unavailable_on_error():
            raw = await self._client.get(self._key(response_id))
            record = decode_response(raw) if raw is not None else None
            keys = [self._key(response_id)]
            if record is not None:
                keys += [self._item_key(record.owner, item.id) for item in items_of(record)]
            return bool(await self._client.delete(*keys))

    def start_backfill(self) -> None:
        """Index the items of responses stored before items had keys (in the background)."""
        if self._backfill is None:
            self._backfill = asyncio.get_running_loop().create_task(self._index_old_items())

    async def backfilled(self) -> int:
        """Wait for the background pass: how many responses it indexed (0 when none ran)."""
        return await self._backfill if self._backfill is not None else 0

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._backfill is not None and not self._backfill.done():
            self._backfill.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._backfill
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    async def _index_old_items(self) -> int:
        marker = f"{self._namespace}:response-items-indexed"
        indexed = 0
        try:
            if await self._client.exists(marker):
                return 0
            batch: list[str] = []
            async for key in self._client.scan_iter(
                match=f"{self._namespace}:response:*", count=_SCAN_BATCH
            ):
                batch.append(key)
                if len(batch) >= _SCAN_BATCH:
                    indexed += await self._index_batch(batch)
                    batch = []
            if batch:
                indexed += await self._index_batch(batch)
            await self._client.set(marker, "1")
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("response_items_index_failed", error=repr(exc), indexed=indexed)
            return indexed
        if indexed:
            log.info("response_items_indexed", responses=indexed)
        return indexed

    async def _index_batch(self, keys: list[str]) -> int:
        values = await self._client.mget(keys)
        records = [decode_response(raw) for raw in values if raw is not None]
        return await self._index_records([r for r in records if r is not None])

    async def _index_records(self, records: list[StoredResponse]) -> int:
        async with self._client.pipeline(transaction=False) as pipe:
            for record in records:
                items = items_of(record)
                await self._index_script(  # queued on the pipeline, run by execute()
                    keys=[self._key(record.id)]
                    + [self._item_key(record.owner, item.id) for item in items],
                    args=[msgspec.json.encode(item) for item in items],
                    client=pipe,
                )
            done = await pipe.execute()
        return sum(int(result) for result in done)

    @contextlib.contextmanager
    def _unavailable_on_error(self) -> Iterator[None]:
        if self._closed:
            raise StoreUnavailable("the Redis response store is closed")
        try:
            yield
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"Redis response store error: {exc!r}") from exc

    def _key(self, response_id: str) -> str:
        return f"{self._namespace}:response:{response_id}"

    def _head_key(self, conversation_id: str) -> str:
        return f"{self._namespace}:response-head:{conversation_id}"

    def _item_key(self, owner: str, item_id: str) -> str:
        return f"{self._namespace}:response-item:{owner}:{item_id}"
