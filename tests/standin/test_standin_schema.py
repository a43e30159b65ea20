"""Message schemas from manifest api + tts-interface.json (contract §1.7, §2.8).

Stand-in only: the probe's ``import_uri`` points at ``../../system/ten_ai_base/...``,
which exists in a TEN app only; the stand-in resolves it to its own copy of the
interface (a real app run of these probes would apply no schema at all).
"""

from __future__ import annotations

import logging
import os

import pytest
import standin_probe_ext  # noqa: F401  (the probes; conftest installs their addons)
import tenhost
from standin_probe_ext.harness import Recorder, data, run, text_input

if not tenhost.is_standin():
    pytest.skip(
        "stand-in internals (schema via the stand-in interface path)",
        allow_module_level=True,
    )

import ten_ai_base  # noqa: E402
from ten_runtime import _schema  # noqa: E402

TTS = "standin_probe_tts"
WORD = {"word": "hi", "start_ms": 0, "duration_ms": 5}
RESULT = {"request_id": "r", "text": "hi", "start_ms": 0, "duration_ms": 5}


def _probe(specs: list[dict]) -> Recorder:
    sends = [data("probe_send", spec) for spec in specs]
    tester = Recorder(sends, until=lambda r: len(r.named("probe_sent")) == len(specs))
    assert run(tester, TTS) is None
    return tester


def test_outgoing_messages_failing_the_schema_are_dropped(caplog):
    caplog.set_level(logging.WARNING, logger="ten")
    specs = [
        {
            "name": "tts_text_result",
            "props": {**RESULT, "words": None, "tag": "null_words"},
        },
        {
            "name": "tts_text_result",
            "props": {**RESULT, "words": [{"start_ms": 1}], "tag": "bad_word"},
        },
        {
            "name": "tts_text_result",
            "props": {**RESULT, "words": [WORD], "tag": "ok", "extra": 1},
        },
        {
            "name": "error",
            "props": {
                "code": "-1000",
                "module": "tts",
                "message": "m",
                "tag": "str_code",
            },
        },
        {
            "name": "error",
            "props": {"module": "tts", "message": "no code", "tag": "no_code"},
        },
        {
            "name": "tts_audio_start",
            "props": {"request_id": "r", "metadata": {"turn_id": "notint"}},
        },
        {
            "name": "tts_audio_start",
            "props": {"request_id": "r2", "metadata": {"turn_id": 7}},
        },
    ]
    tester = _probe(specs)
    assert [p["tag"] for p in tester.named("tts_text_result")] == ["ok"]
    assert [p["tag"] for p in tester.named("error")] == ["no_code"]
    assert [p["request_id"] for p in tester.named("tts_audio_start")] == ["r2"]
    # fire-and-forget: the sender never learns about the drop
    assert [p["err"] for p in tester.named("probe_sent")] == [None] * len(specs)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert (
        "See out data::error with invalid schema: .code: unsupported conversion from `string` to `int64`"
        in warnings
    )
    assert (
        "See out data::tts_text_result with invalid schema: .words: unsupported conversion from `null` to `array`"
        in warnings
    )
    assert any(
        w.startswith("See out data::tts_text_result with invalid schema: .words[0]:")
        for w in warnings
    )


def test_wait_for_result_reports_the_schema_failure_as_code_1():
    specs = [
        {
            "name": "error",
            "props": {"code": "-1000", "module": "tts", "message": "m"},
            "wait": True,
        },
        {
            "name": "error",
            "props": {"code": -1000, "module": "tts", "message": "m"},
            "wait": True,
        },
    ]
    tester = _probe(specs)
    errs = [p["err"] for p in tester.named("probe_sent")]
    assert errs == [[1, ".code: unsupported conversion from `string` to `int64`"], None]
    assert [p["code"] for p in tester.named("error")] == [-1000]


def test_valid_text_result_from_the_base_class_passes():
    tester = Recorder(
        [data("probe_text_result")], until=lambda r: bool(r.named("tts_text_result"))
    )
    assert run(tester, TTS) is None
    assert tester.named("tts_text_result") == [
        {
            "request_id": "tr",
            "text": "hi",
            "start_ms": 0,
            "duration_ms": 5,
            "words": [],
            "text_result_end": False,
            "metadata": {},
        }
    ]


def test_incoming_message_failing_the_schema_is_dropped_before_on_data(
    probe_events, caplog
):
    caplog.set_level(logging.WARNING, logger="ten")
    bad = data(
        "tts_text_input", {"request_id": 123, "text": "x", "text_input_end": True}
    )
    tester = Recorder(
        [bad, text_input("A", "a", True)],
        until=lambda r: bool(r.named("tts_audio_end")),
    )
    assert run(tester, TTS) is None
    assert [e for e in probe_events if e[0] == "on_data"] == [
        ("on_data", "tts_text_input")
    ]
    assert [e[1] for e in probe_events if e[0] == "request_tts"] == ["A"]
    assert (
        "See in data::tts_text_input with invalid schema: "
        ".request_id: unsupported conversion from `uint64` to `string`"
    ) in [r.getMessage() for r in caplog.records]


def test_import_uri_falls_back_to_the_standin_interface(tmp_path):
    uri = "../../system/ten_ai_base/api/tts-interface.json"
    path = _schema.resolve_import_uri(uri, str(tmp_path))
    api = os.path.dirname(ten_ai_base.__file__)  # the stand-in, wherever it is
    assert path == os.path.join(api, "api", "tts-interface.json")
    assert _schema.resolve_import_uri("../nowhere/other.json", str(tmp_path)) is None
    local = tmp_path / "iface.json"
    local.write_text("{}")
    assert _schema.resolve_import_uri("iface.json", str(tmp_path)) == str(local)


def test_required_only_inside_schema_objects():
    schema = _schema.object_schema(
        {
            "properties": {
                "words": {
                    "type": "array",
                    "items": {"type": "object", "properties": {}, "required": ["word"]},
                }
            }
        }
    )
    assert _schema.adjust_object({}, schema) == {}
    with pytest.raises(
        _schema.SchemaError, match=r"\.words\[0\]: the property `word` is required"
    ):
        _schema.adjust_object({"words": [{}]}, schema)
    # integers are adjusted to declared floats; range is checked
    assert _schema.adjust(
        {"f": 1}, {"type": "object", "properties": {"f": {"type": "float64"}}}
    ) == {"f": 1.0}
    with pytest.raises(_schema.SchemaError):
        _schema.adjust(-1, {"type": "uint32"})
