"""Inputs checked and coerced against recorded input forms, with the error the client sees."""

from __future__ import annotations

import pytest

from bridge.errors import BridgeError
from bridge.inputs.parameters import AppParameters, FileUpload, FormField, SystemParameters
from bridge.inputs.validate import Sourced, collect_inputs, validate_inputs
from tests.inputs.helpers import recorded_parameters


def body(**values) -> dict[str, Sourced]:
    return {name: Sourced(value, "body") for name, value in values.items()}


def form(*fields: FormField) -> AppParameters:
    return AppParameters(form=list(fields), file_upload=FileUpload(), limits=SystemParameters())


def test_sources_merge_body_over_metadata_over_system_over_config():
    merged = collect_inputs(
        body={"a": "body"},
        metadata={"input.a": "meta", "input.b": "meta", "trace": "x", "input.": "y"},
        static={"a": "config", "b": "config", "c": "config", "d": "config"},
        system_variable="d",
        system="be brief",
    )
    assert {k: (v.value, v.source) for k, v in merged.items()} == {
        "a": ("body", "body"),
        "b": ("meta", "metadata"),
        "c": ("config", "config"),
        "d": ("be brief", "system"),
    }


def test_missing_required_input_names_it_and_every_way_to_pass_it():
    with pytest.raises(BridgeError) as caught:
        validate_inputs(body(tone="plain"), recorded_parameters("14c"))
    error = caught.value
    assert (error.status, error.param, error.code) == (
        400,
        "inputs.system_prompt",
        "missing_required_input",
    )
    assert "`system_prompt`" in error.message
    assert 'extra_body={"inputs": {"system_prompt"' in error.message
    assert '"input.system_prompt"' in error.message
    assert "`inputs:` config" in error.message
    assert error.headers() == {"x-should-retry": "false"}


def test_blank_required_input_counts_as_missing():
    with pytest.raises(BridgeError, match="system_prompt"):
        validate_inputs(body(system_prompt="  "), recorded_parameters("14c"))


def test_workflow_query_input_counts_as_provided():
    assert validate_inputs({}, recorded_parameters("14b"), provided=frozenset({"query"})) == {}


def test_select_value_outside_options_lists_them():
    with pytest.raises(BridgeError) as caught:
        validate_inputs(body(system_prompt="x", tone="whisper"), recorded_parameters("14c"))
    assert caught.value.param == "inputs.tone"
    assert '"plain", "loud"' in caught.value.message
    assert "whisper" in caught.value.message


def test_error_param_points_at_metadata_when_the_value_came_from_there():
    values = {"system_prompt": Sourced("x", "body"), "tone": Sourced("whisper", "metadata")}
    with pytest.raises(BridgeError) as caught:
        validate_inputs(values, recorded_parameters("14c"))
    assert caught.value.param == "metadata.input.tone"


def test_text_longer_than_max_length_is_refused():
    with pytest.raises(BridgeError) as caught:
        validate_inputs(body(topic="x" * 101), recorded_parameters("30e"))
    assert caught.value.param == "inputs.topic"
    assert "100" in caught.value.message
    assert validate_inputs(body(topic="x" * 100), recorded_parameters("30e")) == {
        "topic": "x" * 100
    }


@pytest.mark.parametrize(
    ("given", "expected"), [("3", 3), (" 2.5 ", 2.5), (7, 7), ("-4", -4), (1.0, 1.0)]
)
def test_number_inputs_are_coerced_from_strings(given, expected):
    params = form(FormField(kind="number", variable="count"))
    result = validate_inputs(body(count=given), params)
    assert result == {"count": expected}
    assert type(result["count"]) is type(expected)


@pytest.mark.parametrize("given", ["three", "nan", True, [1], "1e999"])
def test_non_numbers_for_a_number_input_are_refused(given):
    params = form(FormField(kind="number", variable="count"))
    with pytest.raises(BridgeError) as caught:
        validate_inputs(body(count=given), params)
    assert caught.value.param == "inputs.count"
    assert caught.value.code == "invalid_input"


def test_numbers_become_text_for_text_fields_and_objects_do_not():
    params = form(FormField(kind="text-input", variable="city"))
    assert validate_inputs(body(city=42), params) == {"city": "42"}
    with pytest.raises(BridgeError):
        validate_inputs(body(city={"a": 1}), params)


def test_checkbox_and_json_object_coercion():
    params = form(
        FormField(kind="checkbox", variable="flag"), FormField(kind="json_object", variable="obj")
    )
    assert validate_inputs(body(flag="true", obj='{"a": 1}'), params) == {
        "flag": True,
        "obj": {"a": 1},
    }
    with pytest.raises(BridgeError):
        validate_inputs(body(flag="maybe"), params)


def test_unknown_variables_and_file_inputs_pass_through():
    params = form(FormField(kind="file", variable="doc"))
    doc = {"type": "document", "transfer_method": "remote_url", "url": "https://x.test/a.pdf"}
    assert validate_inputs(body(doc=doc, extra=1), params) == {"doc": doc, "extra": 1}


def test_empty_optional_number_is_left_to_difys_default():
    params = form(FormField(kind="number", variable="count"))
    assert validate_inputs(body(count=""), params) == {}
