"""CORS is off unless origins are configured; when on, browsers' preflights are answered."""

from __future__ import annotations

from litestar.testing import TestClient

from tests.service.conftest import make_bridge

ORIGIN = "https://chat.example.com"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type, x-request-id, "
    "x-dify-conversation-id, x-conversation-key",
}


def test_preflight_is_answered_when_origins_are_configured():
    app = make_bridge("http://127.0.0.1:9/v1", cors_origins=[ORIGIN])
    with TestClient(app) as client:
        response = client.options("/v1/chat/completions", headers=PREFLIGHT)
        simple = client.get("/healthz", headers={"Origin": ORIGIN})
    assert response.status_code in (200, 204)
    assert response.headers["access-control-allow-origin"] == ORIGIN
    allowed = response.headers["access-control-allow-headers"].lower()
    for header in ("authorization", "content-type", "x-request-id", "x-dify-conversation-id"):
        assert header in allowed
    assert "POST" in response.headers["access-control-allow-methods"]
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    exposed = simple.headers["access-control-expose-headers"].lower()
    assert "x-request-id" in exposed and "x-dify-conversation-id" in exposed


def test_no_cors_headers_by_default():
    app = make_bridge("http://127.0.0.1:9/v1")
    with TestClient(app) as client:
        response = client.options("/v1/chat/completions", headers=PREFLIGHT)
        simple = client.get("/healthz", headers={"Origin": ORIGIN})
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in simple.headers


def test_other_origins_are_not_allowed():
    app = make_bridge("http://127.0.0.1:9/v1", cors_origins=[ORIGIN])
    with TestClient(app) as client:
        simple = client.get("/healthz", headers={"Origin": "https://evil.example.com"})
    assert simple.headers.get("access-control-allow-origin") != "https://evil.example.com"
