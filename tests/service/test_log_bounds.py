"""Log fields are bounded (issue 17 item 6: a 1 MB `model` made a 1 MB access line), and the
cut never leaves part of a key unmasked."""

from __future__ import annotations

import json

import pytest
import structlog

from bridge.logging import MAX_FIELD_CHARS, MAX_MODEL_CHARS, configure_logging

# A bridge key of no recognisable shape: only the verbatim masking catches it.
SECRET = "zq-plain-secret-0123456789abcdef"


def logged(capsys: pytest.CaptureFixture[str], **fields: object) -> dict:
    configure_logging("info", "json", secrets=[SECRET])
    structlog.get_logger("test").info("probe", **fields)
    (line,) = capsys.readouterr().err.splitlines()
    return json.loads(line)


def test_a_huge_model_is_cut_to_its_bound(capsys: pytest.CaptureFixture[str]) -> None:
    line = logged(capsys, model="m" * 1_000_000)
    assert line["model"] == "m" * MAX_MODEL_CHARS + f"…(+{1_000_000 - MAX_MODEL_CHARS} chars)"


def test_a_key_across_the_cut_is_masked_whole(capsys: pytest.CaptureFixture[str]) -> None:
    value = "x" * (MAX_FIELD_CHARS - 10) + SECRET + "y" * 100
    line = logged(capsys, error=value)
    assert len(line["error"]) < MAX_FIELD_CHARS + 40
    assert SECRET[:8] not in line["error"]
