"""Files the app produced appear once each as Markdown with absolute URLs; citations opt-in;
a run with reasoning and no answer still ends with content (FastGPT)."""

from __future__ import annotations

import copy
import json
import re

from bridge.dify.events import decode_event
from bridge.translate.stream import EMPTY_ANSWER_NOTE, ContentDelta, Finished, StreamTranslator
from tests.stream.conftest import AUTH, HI
from tests.support.recordings import Recording, load
from tests.support.replay import DifyReplay
from tests.support.sse import content_of, parse_sse

PUBLIC = "https://dify.example.com"


def images(text: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)


def events_of(rec: str, transform=None) -> list:
    payloads = load(rec).sse_events
    if transform:
        payloads = transform(copy.deepcopy(payloads))
    return [decode_event("", json.dumps(p)) for p in payloads]


def run(translator: StreamTranslator, events: list) -> tuple[str, Finished | None]:
    content, finished = "", None
    for event in events:
        for item in translator.feed(event):
            if isinstance(item, ContentDelta):
                content += item.text
            elif isinstance(item, Finished):
                finished = item
    return content, finished


def with_body(rec: str, events: list[dict]) -> Recording:
    recording = copy.copy(load(rec))
    recording.body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return recording


def relative_files(events: list[dict]) -> list[dict]:
    """Dify without FILES_URL renders file URLs relative (`/files/tools/…`)."""
    text = json.dumps(events).replace("http://127.0.0.1:5001/files/", "/files/")
    return json.loads(text)


async def test_chatflow_file_already_in_the_answer_is_not_repeated(bridge_for):
    # 46a: the Answer streams the file as a Markdown image; message_end.files and
    # workflow_finished.files list it again with another signature.
    async with bridge_for(DifyReplay.of("46a", mode="advanced-chat")) as client:
        response = await client.post("/v1/chat/completions", json={**HI, "stream": True}, headers=AUTH)
    content = content_of(parse_sse(response.text)[0])
    assert [u.split("?")[0] for u in images(content)] == [
        "http://127.0.0.1:8765/remote.png",
        "http://127.0.0.1:5001/files/tools/50b9e02f-31fd-4427-adfa-8db723cc2e9a.png",
    ]


async def test_agent_message_file_appears_once_as_an_image(bridge_for):
    # 46d: message_file, then message_end.files with the same file under another id.
    async with bridge_for(DifyReplay.of("46d", mode="agent-chat")) as client:
        streamed = await client.post("/v1/chat/completions", json={**HI, "stream": True}, headers=AUTH)
        plain = await client.post("/v1/chat/completions", json=HI, headers=AUTH)
    content = content_of(parse_sse(streamed.text)[0])
    found = images(content)
    assert len(found) == 1
    assert found[0].startswith("http://127.0.0.1:5001/files/tools/35884f75-53c2-4bf3-8264-625d0e872460.png?")
    assert content.endswith(")") and "\n\n![" in content
    assert plain.json()["choices"][0]["message"]["content"] == content


async def test_relative_file_urls_use_the_public_dify_url(bridge_for):
    recording = with_body("46a", relative_files(load("46a").sse_events))
    replay = DifyReplay(routes={"chat-messages": recording}, mode="advanced-chat")
    async with bridge_for(replay, dify_public_url=PUBLIC) as client:
        response = await client.post("/v1/chat/completions", json={**HI, "stream": True}, headers=AUTH)
    found = images(content_of(parse_sse(response.text)[0]))
    assert found[1].startswith(f"{PUBLIC}/files/tools/50b9e02f-31fd-4427-adfa-8db723cc2e9a.png?")
    assert len(found) == 2


async def test_relative_file_urls_fall_back_to_the_dify_api_host(bridge_for):
    recording = with_body("46d", relative_files(load("46d").sse_events))
    replay = DifyReplay(routes={"chat-messages": recording}, mode="agent-chat")
    async with bridge_for(replay) as client:
        response = await client.post("/v1/chat/completions", json=HI, headers=AUTH)
    found = images(response.json()["choices"][0]["message"]["content"])
    assert len(found) == 1 and found[0].startswith("http://dify.test/files/tools/35884f75")


def test_relative_link_split_across_message_events_is_made_absolute():
    translator = StreamTranslator("advanced-chat", files_base=PUBLIC)

    def message(text: str):
        return decode_event("", json.dumps({"event": "message", "task_id": "t", "answer": text}))

    content, _ = run(translator, [message("see ![a](/fi"), message("les/x.png) and ]"), message("(/"),
                                  message("files/y.pdf)"), decode_event("", '{"event":"message_end","task_id":"t"}')])
    assert content == f"see ![a]({PUBLIC}/files/x.png) and ]({PUBLIC}/files/y.pdf)"


def test_workflow_file_outputs_become_markdown_after_the_text():
    file_object = next(e for e in load("46a").sse_events if e["event"] == "message_end")["files"][0]
    pdf = {**file_object, "type": "document", "filename": "report.pdf", "mime_type": "application/pdf",
           "related_id": "pdf-1", "url": "/files/tools/pdf-1.pdf?sign=x"}
    finished = {"event": "workflow_finished", "task_id": "t", "workflow_run_id": "r",
                "data": {"status": "succeeded", "total_tokens": 0,
                         "outputs": {"files": [file_object, pdf], "text": 200},
                         "files": [file_object, pdf]}}
    translator = StreamTranslator("workflow", files_base=PUBLIC)
    content, finished_item = run(translator, [decode_event("", json.dumps(finished))])
    assert finished_item is not None
    assert content == (
        "200\n\n"
        f"![2de835b0a0b64d5d9a472a74cdea0781.png]({file_object['url']})\n"
        f"[report.pdf]({PUBLIC}/files/tools/pdf-1.pdf?sign=x)"
    )


RESOURCES = [
    {"position": 1, "dataset_name": "Guild lore", "document_name": "acme.md", "score": 0.9, "content": "…"},
    {"position": 2, "dataset_name": "Guild lore", "document_name": "acme.md", "score": 0.8, "content": "…"},
    {"position": 3, "dataset_name": "Founders", "document_name": "people.pdf", "score": 0.7, "content": "…"},
]


def with_resources(events: list[dict]) -> list[dict]:
    for event in events:
        if event["event"] == "message_end":
            event["metadata"]["retriever_resources"] = RESOURCES
    return events


async def test_citations_are_appended_only_when_the_model_asks(bridge_for):
    recording = with_body("30a", with_resources(load("30a").sse_events))
    replay = DifyReplay(routes={"chat-messages": recording}, mode="chat")
    async with bridge_for(replay, models=[{"id": "o1", "citations": True}, {"id": "plain"}]) as client:
        cited = await client.post("/v1/chat/completions", json={**HI, "stream": True}, headers=AUTH)
        plain = await client.post("/v1/chat/completions", json={**HI, "model": "plain"}, headers=AUTH)
    assert content_of(parse_sse(cited.text)[0]) == (
        "Echo: hello llm world\n\nSources:\n1. acme.md (Guild lore)\n2. people.pdf (Founders)"
    )
    assert plain.json()["choices"][0]["message"]["content"] == "Echo: hello llm world"


def test_reasoning_without_an_answer_still_ends_with_content():
    # FastGPT reports reasoning with empty content as an empty-response error (clients.md).
    def empty_answer(events: list[dict]) -> list[dict]:
        return [e for e in events if e["event"] != "message"]

    translator = StreamTranslator("advanced-chat", reasoning=True)
    content, finished = run(translator, events_of("01", empty_answer))
    assert translator.reasoning_text.startswith("Code…\n")
    assert content == EMPTY_ANSWER_NOTE and finished is not None
    assert translator.answer == EMPTY_ANSWER_NOTE  # what the conversation store sees, too


def test_no_reasoning_and_no_answer_stays_empty():
    translator = StreamTranslator("advanced-chat", reasoning=False)
    content, _ = run(translator, events_of("01", lambda es: [e for e in es if e["event"] != "message"]))
    assert content == ""

