"""Files a run produces (issue 14 item 3 and 6): an HTTP Request node fetching a PNG becomes a
signed tool file (46a-46c), and an agent whose tool is a workflow returns it (46d, 46e).

The recorded apps fetch http://127.0.0.1:8765/remote.png; here their DSL copies point at a
stand-in file server on a free port instead.
"""

from __future__ import annotations

import re
import struct
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from bridge.emulator import EmulatorConfig, create_emulator_app
from tests.emulator.sse import events, frames, names
from tests.emulator.test_conformance import replay, shape
from tests.support.recordings import DSL_DIR, load
from tests.support.servers import serve_in_thread

FILECHAT, IMAGEWF, FILEAGENT = "app-filechatflow", "app-imagewf", "app-llmagentfiletool"
RECORDED_URL = "http://127.0.0.1:8765/remote.png"
SIGNED = re.compile(
    r"^(?P<base>http://127\.0\.0\.1:\d+)/files/tools/(?P<id>[0-9a-f-]{36})\.png"
    r"\?timestamp=\d+&nonce=[0-9a-f]{32}&sign=[A-Za-z0-9_-]{43}=$"
)


def _png() -> bytes:
    """An 8x8 grey PNG, like the recordings' remote.png."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + b"\x80" * 8 for _ in range(8))
    header = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


PNG = _png()


@pytest.fixture(scope="module")
def png_url() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/remote.png"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def base(png_url: str, tmp_path_factory) -> Iterator[str]:
    dsl_dir = tmp_path_factory.mktemp("file-apps")
    for name in ("file_chatflow.yml", "img_wf.yml", "llm_agent_filetool.yml"):
        text = (Path(DSL_DIR) / name).read_text(encoding="utf-8")
        (dsl_dir / name).write_text(text.replace(RECORDED_URL, png_url), encoding="utf-8")
    config = EmulatorConfig(dsl_dir=dsl_dir, workflow_tools={"fetch_picture": "ImageWF"})
    with serve_in_thread(create_emulator_app(config)) as url:
        yield url


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=20) as c:
        yield c


def _same_stream(got: str, recorded: str) -> None:
    """Same event sequence and the same field layout per event (test_conformance's rule)."""
    g, w = frames(got), frames(recorded)
    assert [d["event"] if d else k for k, d in g] == [d["event"] if d else k for k, d in w]
    for (_, a), (_, b) in zip(g, w, strict=True):
        assert shape(a) == shape(b)


def _answer(body: str) -> str:
    return "".join(e["answer"] for e in events(body) if e["event"] == "message")


def test_46a_fetched_png_becomes_a_signed_tool_file(client: httpx.Client, png_url: str) -> None:
    response = replay(client, load("46a"), FILECHAT)
    _same_stream(response.text, load("46a").body.decode())
    evs = events(response.text)
    answer = _answer(response.text)
    prefix = f"Here is a picture: ![cat]({png_url})\nAnd the fetched file: "
    assert answer.startswith(prefix)
    image = re.fullmatch(r"!\[([0-9a-f]{32})\.png\]\((.+)\)", answer[len(prefix) :])
    assert image, answer
    assert SIGNED.match(image.group(2))
    http = next(
        e["data"] for e in evs if e["event"] == "node_finished" and e["data"]["node_id"] == "img"
    )
    assert http["outputs"]["body"] == ""  # not the PNG bytes as text
    (file,) = http["outputs"]["files"]
    assert file["transfer_method"] == "tool_file" and file["mime_type"] == "image/png"
    assert file["size"] == len(PNG) and file["filename"] == image.group(1) + ".png"
    assert http["files"] == [file]
    assert http["process_data"]["request"].startswith("GET /remote.png HTTP/1.1\r\nHost: ")
    for event in (evs[-2], evs[-1]["data"]):  # message_end, workflow_finished
        (listed,) = event["files"]
        assert listed["related_id"] == file["related_id"]
    # the URL serves the file; an altered signature does not
    fetched = httpx.get(image.group(2))
    assert fetched.status_code == 200 and fetched.content == PNG
    assert fetched.headers["content-type"] == "image/png"
    forged = httpx.get(re.sub(r"sign=.{4}", "sign=AAAA", image.group(2)))
    assert forged.status_code == 403


def test_46b_blocking_answer_keeps_the_image(client: httpx.Client) -> None:
    response = replay(client, load("46b"), FILECHAT)
    assert response.status_code == 200
    assert shape(response.json()) == shape(load("46b").json)
    assert re.search(
        r"fetched file: !\[[0-9a-f]{32}\.png\]\(http://\S+\)$", response.json()["answer"]
    )


def test_46c_stored_answer_has_images_stripped_and_lists_the_file(client: httpx.Client) -> None:
    run = replay(client, load("46a"), FILECHAT)
    conversation_id = events(run.text)[-1]["conversation_id"]
    listed = client.get(
        "/v1/messages",
        params={"conversation_id": conversation_id, "user": "rec-user-46"},
        headers={"Authorization": f"Bearer {FILECHAT}"},
    ).json()["data"]
    (want,) = load("46c").json["data"]
    (got,) = listed
    assert list(got) == list(want)
    assert got["answer"] == want["answer"] == "Here is a picture: \nAnd the fetched file:"
    (file,) = got["message_files"]
    assert list(file) == list(want["message_files"][0])
    assert (file["type"], file["belongs_to"], file["transfer_method"], file["mime_type"]) == (
        "image",
        "assistant",
        "tool_file",
        "image/png",
    )
    assert SIGNED.match(file["url"])


def test_image_workflow_outputs_the_file_and_the_status(client: httpx.Client) -> None:
    response = client.post(
        "/v1/workflows/run",
        json={"inputs": {}, "response_mode": "blocking", "user": "tester"},
        headers={"Authorization": f"Bearer {IMAGEWF}"},
    )
    outputs = response.json()["data"]["outputs"]
    assert list(outputs) == ["files", "text"]
    assert outputs["text"] == 200
    (file,) = outputs["files"]
    assert file["transfer_method"] == "tool_file" and SIGNED.match(file["url"])


def test_46d_agent_calls_the_workflow_tool_and_sends_its_file(client: httpx.Client) -> None:
    response = replay(client, load("46d"), FILEAGENT)
    recorded = load("46d").body.decode()
    got_names, want_names = names(response.text), names(recorded)
    # the fake model echoes the tool's JSON word by word: the chunk count follows ids and URLs
    squash = [
        n for i, n in enumerate(got_names) if not (n == "agent_message" and got_names[i - 1] == n)
    ]
    want_squash = [
        n for i, n in enumerate(want_names) if not (n == "agent_message" and want_names[i - 1] == n)
    ]
    assert squash == want_squash
    evs, want = events(response.text), load("46d").sse_events
    for got_event, want_event in zip(
        [e for e in evs if e["event"] != "agent_message"],
        [e for e in want if e["event"] != "agent_message"],
        strict=True,
    ):
        assert list(got_event) == list(want_event)
    thoughts = [e for e in evs if e["event"] == "agent_thought"]
    (message_file,) = [e for e in evs if e["event"] == "message_file"]
    assert (message_file["type"], message_file["belongs_to"]) == ("image", "assistant")
    assert SIGNED.match(message_file["url"])
    assert thoughts[1]["tool"] == "fetch_picture"
    assert thoughts[1]["tool_labels"] == {
        "fetch_picture": {"en_US": "fetch_picture", "zh_Hans": "fetch_picture"}
    }
    assert thoughts[2]["message_files"] == [message_file["id"]]
    assert thoughts[2]["observation"].startswith(
        '{"fetch_picture": "image has been created and sent to user already'
    )
    answer = "".join(e["answer"] for e in evs if e["event"] == "agent_message")
    assert answer.startswith("Echo: tool said: image has been created and sent to user already")
    (end_file,) = evs[-1]["files"]
    assert list(end_file) == list(want[-1]["files"][0])
    assert end_file["related_id"] == message_file["id"]
    assert (end_file["size"], end_file["mime_type"]) == (0, "application/octet-stream")


def test_46e_agent_message_lists_the_tool_file(client: httpx.Client) -> None:
    run = replay(client, load("46d"), FILEAGENT)
    conversation_id = events(run.text)[-1]["conversation_id"]
    (got,) = client.get(
        "/v1/messages",
        params={"conversation_id": conversation_id, "user": "rec-user-46"},
        headers={"Authorization": f"Bearer {FILEAGENT}"},
    ).json()["data"]
    (want,) = load("46e").json["data"]
    assert list(got) == list(want)
    (file,) = got["message_files"]
    assert list(file) == list(want["message_files"][0])
    first, second = got["agent_thoughts"]
    assert first["files"] == [file["id"]] and second["files"] == []
    assert first["tool"] == "fetch_picture"
    assert got["answer"].startswith("Echo: tool said: image has been created")
