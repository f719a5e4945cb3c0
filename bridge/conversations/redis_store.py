"""Redis conversation store: one store shared by several bridge replicas.

Keys live under the ``dify-bridge:`` namespace::

    dify-bridge:turn:<fingerprint>        → StoredTurn as JSON
    dify-bridge:head:<conversation id>    → fingerprint of its latest stored state
    dify-bridge:key:<chat key>            → conversation id
    dify-bridge:keys-of:<conversation id> → set of chat keys bound to it (for forgetting)

Every key is written with an expiry of ``ttl`` (``PX``), so the store's size is bounded by
the write rate times the TTL; beyond that, give the Redis instance a ``maxmemory`` with a
``volatile-lru``/``allkeys-lru`` policy — all keys here carry a TTL, and losing one only
means a turn is carried in the query instead of continued. ``max_entries`` is not enforced
here. Forgetting touches keys named in a set, so use a single Redis (or a primary with
replicas), not Redis Cluster.

A dead or unreachable Redis must not stall requests: connect and socket timeouts are short
and a failed command is retried once (to replace a pooled connection the server dropped),
then surfaces as :class:`~bridge.conversations.store.StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import msgspec
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from bridge.conversations.store import StoredTurn, StoreUnavailable

NAMESPACE = "dify-bridge"
DEFAULT_TIMEOUT = 0.5
MAX_CONNECTIONS = 64
POOL_WAIT = 2.0

# Deletes the head and the chat keys of a conversation; a key rebound to another
# conversation since (its value changed) is left alone.
_FORGET_SCRIPT = """
for _, key in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    if redis.call('GET', key) == ARGV[1] then
        redis.call('DEL', key)
    end
end
redis.call('DEL', KEYS[1], KEYS[2])
"""

# Compare-and-set of a head: Redis runs a script atomically, so no other replica's command
# lands between the GET and the SET (WATCH/MULTI would need a retry loop for the same effect).
# KEYS[1] head; ARGV: expected, new, ttl in ms.
_SWAP_HEAD_SCRIPT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
    return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""

# Stores a turn and replaces a claimed head with its fingerprint in one step.
# KEYS[1] turn, KEYS[2] head; ARGV: turn JSON, fingerprint, claim, ttl in ms.
_PUT_REPLACING_SCRIPT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
if redis.call('GET', KEYS[2]) ~= ARGV[3] then
    return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[4])
return 1
"""

_turn_decoder = msgspec.json.Decoder(StoredTurn)


class RedisStore:
    """:class:`~bridge.conversations.store.ConversationStore` in Redis."""

    def __init__(self, client: redis.Redis, *, ttl: float, namespace: str = NAMESPACE) -> None:
        self._client = client
        self._ttl_ms = max(1, round(ttl * 1000))
        self._namespace = namespace
        self._forget = client.register_script(_FORGET_SCRIPT)
        self._swap_head = client.register_script(_SWAP_HEAD_SCRIPT)
        self._put_replacing = client.register_script(_PUT_REPLACING_SCRIPT)
        self._closed = False

    @classmethod
    def from_url(
        cls, url: str, *, ttl: float, timeout: float = DEFAULT_TIMEOUT, namespace: str = NAMESPACE
    ) -> RedisStore:
        """A store on ``redis://host:port/db`` (or ``rediss://``); connects lazily.

        At most ``MAX_CONNECTIONS`` connections; a burst beyond that waits for a free one
        (up to ``POOL_WAIT`` seconds) instead of failing at once.
        """
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=POOL_WAIT,
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), retries=1),
        )
        return cls(redis.Redis.from_pool(pool), ttl=ttl, namespace=namespace)

    async def get(self, fingerprint: str) -> StoredTurn | None:
        with self._unavailable_on_error():
            raw = await self._client.get(self._turn_key(fingerprint))
        if raw is None:
            return None
        try:
            return _turn_decoder.decode(raw)
        except msgspec.DecodeError:
            # Written by an incompatible bridge version: as good as absent.
            return None

    async def put(
        self, fingerprint: str, turn: StoredTurn, *, replacing: str | None = None
    ) -> bool:
        encoded = msgspec.json.encode(turn)
        with self._unavailable_on_error():
            if replacing is not None:
                moved = await self._put_replacing(
                    keys=[self._turn_key(fingerprint), self._head_key(turn.conversation_id)],
                    args=[encoded, fingerprint, replacing, self._ttl_ms],
                )
                return bool(moved)
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self._turn_key(fingerprint), encoded, px=self._ttl_ms)
                pipe.set(self._head_key(turn.conversation_id), fingerprint, px=self._ttl_ms)
                await pipe.execute()
        return True

    async def swap_head(self, conversation_id: str, expected: str, new: str) -> bool:
        with self._unavailable_on_error():
            swapped = await self._swap_head(
                keys=[self._head_key(conversation_id)], args=[expected, new, self._ttl_ms]
            )
        return bool(swapped)

    async def head(self, conversation_id: str) -> str | None:
        with self._unavailable_on_error():
            return await self._client.get(self._head_key(conversation_id))

    async def get_key(self, key: str) -> str | None:
        with self._unavailable_on_error():
            return await self._client.get(self._chat_key(key))

    async def put_key(self, key: str, conversation_id: str) -> None:
        keys_of = self._keys_of_key(conversation_id)
        with self._unavailable_on_error():
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self._chat_key(key), conversation_id, px=self._ttl_ms)
                pipe.sadd(keys_of, self._chat_key(key))
                pipe.pexpire(keys_of, self._ttl_ms)
                await pipe.execute()

    async def forget_conversation(self, conversation_id: str) -> None:
        with self._unavailable_on_error():
            await self._forget(
                keys=[self._head_key(conversation_id), self._keys_of_key(conversation_id)],
                args=[conversation_id],
            )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RedisError, OSError):
            await self._client.aclose()

    @contextlib.contextmanager
    def _unavailable_on_error(self) -> Iterator[None]:
        if self._closed:
            raise StoreUnavailable("the Redis store is closed")
        try:
            yield
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"Redis store error: {exc!r}") from exc

    def _turn_key(self, fingerprint: str) -> str:
        return f"{self._namespace}:turn:{fingerprint}"

    def _head_key(self, conversation_id: str) -> str:
        return f"{self._namespace}:head:{conversation_id}"

    def _chat_key(self, key: str) -> str:
        return f"{self._namespace}:key:{key}"

    def _keys_of_key(self, conversation_id: str) -> str:
        return f"{self._namespace}:keys-of:{conversation_id}"
