"""Dify overloaded or in maintenance answers 503 (its own JSON, or a proxy's HTML page): the
client gets a retryable 503, not a 502 (issue 17 item 6)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bridge import create_app, load_settings
from tests.support.servers import serve_in_thread

CLIENT_APP_KEY = "app-client-own-key"
NGINX_503 = b"<html><head><title>503 Service Temporarily Unavailable</title></head></html>"
DIFY_503 = json.dumps(
    {"code": "service_unavailable", "message": "Dify is under maintenance.", "status": 503}
).encode()


def unavailable(body: bytes, content_type: bytes) -> Any:
    """A Dify that answers every request with 503 and `body`, over real HTTP."""

    async def app(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = [(b"content-type", content_type)]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.fixture(params=["dify-json", "proxy-html"])
def bridge(request: pytest.FixtureRequest) -> Iterator[str]:
    body, kind = (
        (DIFY_503, b"application/json")
        if request.param == "dify-json"
        else (NGINX_503, b"text/html")
    )
    with serve_in_thread(unavailable(body, kind)) as dify:
        env = {"DIFY_API_URL": f"{dify}/v1", "BRIDGE_STORE": "memory://", "LOG_FORMAT": "json"}
        with serve_in_thread(create_app(load_settings(env=env))) as url:
            yield url


@pytest.mark.parametrize("stream", [False, True])
def test_a_dify_503_reaches_the_client_as_a_retryable_503(bridge: str, stream: bool) -> None:
    response = httpx.post(
        f"{bridge}/v1/chat/completions",
        headers={"Authorization": f"Bearer {CLIENT_APP_KEY}"},
        json={"model": "o1", "messages": [{"role": "user", "content": "hi"}], "stream": stream},
    )
    assert response.status_code == 503, response.text
    # Retryable: the openai SDKs retry a 503 unless told `x-should-retry: false`.
    assert response.headers.get("x-should-retry") != "false"
    assert int(response.headers["retry-after"]) > 0
    error = response.json()["error"]
    assert error["type"] == "server_error"
    assert "unavailable" in error["message"]
    assert CLIENT_APP_KEY not in response.text
