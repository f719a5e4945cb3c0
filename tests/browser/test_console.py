"""The operator console in a real browser (Debian's chromium through playwright-core)
against `dify-bridge serve` and `dify-bridge emulator` as their own processes, plus the
refusals checked over plain HTTP: no session, no CSRF token, too many failed logins."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.shipped import REPO, shipped_bridge, upstream_process

HERE = Path(__file__).resolve().parent
CHROMIUM = Path("/usr/bin/chromium")
ADMIN_KEY = "admin-key-for-the-browser-test"
HTML_ANSWER = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">喵'
# Every console route: none may answer without a session.
ROUTES = [
    ("GET", "/console"),
    ("GET", "/console/live"),
    ("GET", "/console/playground"),
    ("GET", "/console/models"),
    ("GET", "/console/keys"),
    ("GET", "/console/requests"),
    ("GET", "/console/connect"),
    ("GET", "/console/static/console.js"),
    ("GET", "/console/static/vendor/htmx.min.js"),
    ("POST", "/console/models/preview"),
    ("POST", "/console/models/save"),
    ("POST", "/console/models/x/delete"),
    ("POST", "/console/keys/create"),
    ("POST", "/console/keys/abc/revoke"),
    ("POST", "/console/logout"),
]


def _require_browser() -> None:
    if shutil.which("node") is None or not CHROMIUM.exists():
        pytest.skip("node or /usr/bin/chromium missing: scripts/test.sh installs them")
    if not (HERE / "node_modules" / "playwright-core").exists():
        pytest.fail("tests/browser/node_modules is missing: run scripts/test.sh (npm ci)")


def _html_dsl_dir(tmp: Path) -> Path:
    """The emulator's apps plus one whose answer is HTML (Cat_LLM with a fixed answer)."""
    folder = tmp / "dsl"
    folder.mkdir()
    for dsl in (REPO / "dify-dsl").glob("*.yml"):
        shutil.copy(dsl, folder / dsl.name)
    cat = (REPO / "dify-dsl" / "Cat_LLM.yml").read_text(encoding="utf-8")
    html = cat.replace("name: Cat_LLM", "name: Html_Answer").replace(
        "answer: '{{#1739210251066.result#}}'", "answer: " + json.dumps(HTML_ANSWER)
    )
    assert html != cat and HTML_ANSWER[:8] in html
    (folder / "Html_Answer.yml").write_text(html, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    _require_browser()
    tmp = tmp_path_factory.mktemp("console")
    shots = tmp / "screenshots"
    shots.mkdir()
    with (
        upstream_process("emulator", "--dsl-dir", str(_html_dsl_dir(tmp))) as dify,
        shipped_bridge(dify, BRIDGE_ADMIN_KEY=ADMIN_KEY) as bridge,
    ):
        result = subprocess.run(
            ["node", "console.mjs"],
            cwd=HERE,
            env={
                **os.environ,
                "BASE": bridge.url,
                "ADMIN_KEY": ADMIN_KEY,
                "DIFY_URL": dify,
                "SHOTS": str(shots),
                "HTML_APP_KEY": "app-html-answer",
            },
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout.strip().splitlines()[-1])
        found["log"] = bridge.log.read_text(errors="replace")
        found["url"] = bridge.url
        found["shots"] = shots
        found["refusals"] = _refusals(bridge.url)
    return found


def _refusals(url: str) -> dict[str, Any]:
    refused = {}
    with httpx.Client(base_url=url, follow_redirects=False) as anonymous:
        for method, path in ROUTES:
            response = anonymous.request(method, path, headers={"accept": "text/html"})
            refused[f"{method} {path}"] = (response.status_code, response.headers.get("location"))
    with httpx.Client(base_url=url) as admin:
        page = admin.get("/console/login").text
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page).group(1)
        admin.post("/console/login", data={"_csrf_token": token, "admin_key": ADMIN_KEY})
        refused["session_overview"] = admin.get("/console").status_code
        refused["post_without_csrf"] = admin.post(
            "/console/keys/create", data={"name": "x"}
        ).status_code
        refused["post_with_csrf"] = admin.post(
            "/console/keys/create", data={"name": "with-token", "_csrf_token": token}
        ).status_code
    with httpx.Client(base_url=url) as guesser:
        page = guesser.get("/console/login").text
        token = re.search(r'name="_csrf_token" value="([^"]+)"', page).group(1)
        refused["guesses"] = [
            guesser.post(
                "/console/login", data={"_csrf_token": token, "admin_key": f"guess-{i}"}
            ).status_code
            for i in range(7)
        ]
    return refused


def test_no_browser_step_failed(run: dict[str, Any]) -> None:
    assert "error" not in run, run.get("error")


def test_login(run: dict[str, Any]) -> None:
    assert run["redirected_to_login"]
    assert "not the admin key" in run["wrong_key_message"]
    assert run["overview_heading"] == "Overview"
    assert run["session_cookie"] == {"httpOnly": True, "sameSite": "Strict"}


def test_saved_model_is_served_without_restart(run: dict[str, Any]) -> None:
    assert "Cat_LLM" in run["preview_text"] and "advanced-chat" in run["preview_text"]
    assert "cat-console" in run["saved_rows"]
    assert "cat-console" in run["v1_models"]
    # The Dify key is write-only: never on the page after saving.
    assert "app-cat-llm" not in run["models_page_html"]


def test_playground_streams_the_answer(run: dict[str, Any]) -> None:
    assert "喵" in run["playground_answer"]
    assert run["playground_conversation"] not in ("", "–")
    assert "in /" in run["playground_usage"]
    assert "YOUR_KEY" in run["copy_curl"] and "cat-console" in run["copy_curl"]


def test_key_create_use_revoke(run: dict[str, Any]) -> None:
    assert run["key_prefix"] == "sk-br-"
    assert run["with_key"]["status"] == 200 and "喵" in run["with_key"]["content"]
    assert run["without_key"]["status"] == 401  # a key exists: the models need one
    assert not run["key_shown_again"]
    assert "revoked" in run["revoked_row"]
    assert run["after_revoke"] == {
        "status": 401,
        "code": "invalid_api_key",
        "type": "invalid_request_error",
        "content": None,
    }


@pytest.mark.xfail(
    strict=True,
    reason="the emulator's DSL apps (code nodes) report no token usage, so a budget is never "
    "used up through them; needs a DSL with an LLM node (tests/unit covers the arithmetic)",
)
def test_token_budget_exhausted_is_429_insufficient_quota(run: dict[str, Any]) -> None:
    assert run["budget_first"]["status"] == 200
    assert run["budget_refused"] == {
        "status": 429,
        "code": "insufficient_quota",
        "type": "insufficient_quota",
        "content": None,
    }


def test_request_log_finds_the_key(run: dict[str, Any]) -> None:
    assert "tiny-budget" in run["request_rows"]
    assert "cat-console" in run["request_rows"]


def test_html_answer_renders_as_text(run: dict[str, Any]) -> None:
    assert "<script>window.pwned = 1</script>" in run["html_answer_text"]
    assert run["html_answer_elements"] == 0
    assert run["html_pwned"] is None


def test_no_csp_violations_and_connect_page(run: dict[str, Any]) -> None:
    assert run["csp_errors"] == []
    assert run["url"] in run["connect_text"] and "FastGPT" in run["connect_text"]
    assert "cat-console" in run["overview_models"]


def test_every_console_route_refuses_without_session(run: dict[str, Any]) -> None:
    for route, found in run["refusals"].items():
        if not route.startswith(("GET ", "POST ")):
            continue
        status, location = found
        assert status in (401, 403, 303), route
        if status == 303:
            assert location == "/console/login", route
    assert run["refusals"]["session_overview"] == 200


def test_post_without_csrf_token_fails(run: dict[str, Any]) -> None:
    assert run["refusals"]["post_without_csrf"] == 403
    assert run["refusals"]["post_with_csrf"] == 200


def test_failed_logins_are_throttled(run: dict[str, Any]) -> None:
    guesses = run["refusals"]["guesses"]
    assert guesses[:5] == [401] * 5 and guesses[5:] == [429, 429]


def test_keys_never_logged_and_screenshots_saved(run: dict[str, Any]) -> None:
    assert "app-cat-llm" not in run["log"]
    assert "sk-br-" not in run["log"]
    for name in ("overview", "playground", "models", "keys", "requests", "connect"):
        assert (run["shots"] / f"{name}.png").stat().st_size > 10_000, name
