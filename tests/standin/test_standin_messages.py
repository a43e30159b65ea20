"""Message objects, errors and enums (contract §1.5, §1.6), without a graph."""

from __future__ import annotations

import json

import pytest
from ten_runtime import (
    AudioFrame,
    AudioFrameDataFmt,
    Cmd,
    CmdResult,
    Data,
    DefaultLogOption,
    LogLevel,
    StatusCode,
    TenError,
    TenErrorCode,
)


def test_constructors_raise_and_create_needs_a_name():
    with pytest.raises(NotImplementedError, match="Use Data.create instead."):
        Data("x")
    with pytest.raises(TypeError):
        Data.create()
    with pytest.raises(NotImplementedError):
        TenError(1, "x")


def test_set_property_from_json_at_root_replaces_the_object():
    d = Data.create("x")
    assert d.set_property_from_json(None, json.dumps({"k": 1, "s": "v"})) is None
    assert d.set_property_from_json("", json.dumps({"k2": 2})) is None
    assert json.loads(d.get_property_to_json(None)[0]) == {"k2": 2}
    d.set_property_from_json(None, json.dumps({"k3": 3}))
    assert json.loads(d.get_property_to_json("")[0]) == {"k3": 3}


def test_sub_paths_create_and_replace_subtrees():
    d = Data.create("x")
    assert d.get_property_to_json(None) == ("{}", None)
    d.set_property_from_json("a.b", json.dumps({"c": 1, "d": 2}))
    d.set_property_from_json("a.b", json.dumps({"e": 3}))
    assert json.loads(d.get_property_to_json(None)[0]) == {"a": {"b": {"e": 3}}}
    d.set_property_int("metadata.turn_id", -1000)
    assert d.get_property_int("metadata.turn_id") == (-1000, None)
    assert d.get_property_int("a.b.e") == (3, None)


def test_get_property_to_json_is_pretty_printed_with_four_spaces():
    d = Data.create("x")
    d.set_property_from_json(None, json.dumps({"a": {"b": 1}}))
    text, err = d.get_property_to_json(None)
    assert err is None
    assert '\n    "a": {\n        "b": 1\n    }' in text
    assert d.get_property_to_json("a.b") == ("1", None)


def test_message_getters_report_missing_and_wrong_types():
    d = Data.create("x")
    d.set_property_from_json(None, json.dumps({"s": "str", "n": 5, "o": {}}))
    value, err = d.get_property_string("missing")
    assert value == "" and err.error_code() == 100000
    assert err.error_message() == "Failed to find value: missing"
    for getter, empty in (("int", 0), ("float", 0.0), ("bool", False)):
        value, err = getattr(d, f"get_property_{getter}")("nope")
        assert value == empty and err.error_code() == 100000
    value, err = d.get_property_int("s")
    assert (value, err.error_code()) == (0, 1)
    assert err.error_message() == "The conversion from string to uint32 is unfit."
    for path in ("n", "o"):
        value, err = d.get_property_string(path)
        assert (value, err.error_code(), err.error_message()) == (
            "",
            3,
            "Value is not string.",
        )
    assert d.get_property_float("n")[1].error_code() == 1
    assert d.get_property_bool("n")[1].error_code() == 1


def test_typed_setters_round_trip():
    d = Data.create("x")
    d.set_property_string("s", "v")
    d.set_property_bool("b", True)
    d.set_property_float("f", 1.5)
    d.set_property_buf("buf", b"\x00\x01")
    assert d.get_property_string("s") == ("v", None)
    assert d.get_property_bool("b") == (True, None)
    assert d.get_property_float("f") == (1.5, None)
    buf, err = d.get_property_buf("buf")
    assert (bytes(buf), err) == (b"\x00\x01", None)


def test_data_buffer_calls():
    d = Data.create("x")
    d.alloc_buf(4)
    mv = d.lock_buf()
    mv[:] = b"abcd"
    assert d.unlock_buf(mv) is None
    buf = d.get_buf()
    assert isinstance(buf, bytearray) and buf == bytearray(b"abcd")
    buf[0] = 0
    assert d.get_buf() == bytearray(b"abcd")  # get_buf is a copy
    clone = d.clone()
    assert clone.get_name() == "x" and clone.get_buf() == bytearray(b"abcd")


def test_audio_frame_fields():
    f = AudioFrame.create("pcm_frame")
    f.set_sample_rate(24000)
    f.set_bytes_per_sample(2)
    f.set_number_of_channels(1)
    f.set_samples_per_channel(4)
    f.set_timestamp(123)
    f.set_data_fmt(AudioFrameDataFmt.INTERLEAVE)
    f.alloc_buf(8)
    mv = f.lock_buf()
    mv[:] = bytes(range(8))
    f.unlock_buf(mv)
    assert (
        f.get_sample_rate(),
        f.get_bytes_per_sample(),
        f.get_number_of_channels(),
    ) == (24000, 2, 1)
    assert (f.get_samples_per_channel(), f.get_timestamp(), f.get_line_size()) == (
        4,
        123,
        0,
    )
    assert f.get_data_fmt() == AudioFrameDataFmt.INTERLEAVE == 1
    assert f.is_eof() is False
    assert f.get_buf() == bytearray(range(8))
    f.set_property_from_json("metadata", json.dumps({"turn_id": 1}))
    assert json.loads(f.get_property_to_json(None)[0]) == {"metadata": {"turn_id": 1}}


def test_cmd_result():
    cmd = Cmd.create("hello")
    result = CmdResult.create(StatusCode.ERROR, cmd)
    assert result.get_status_code() == StatusCode.ERROR == 1
    assert result.is_final() and result.is_completed()
    result.set_final(False)
    assert not result.is_final()
    assert StatusCode.OK == 0


def test_ten_error():
    err = TenError.create(TenErrorCode.ErrorCodeGeneric, "my failure")
    assert (err.error_code(), err.error_message()) == (1, "my failure")
    assert type(err.error_code()) is int
    assert TenError.create(TenErrorCode.ErrorCodeTimeout).error_message() == ""
    assert [c.value for c in TenErrorCode] == list(range(1, 9))
    assert (
        TenErrorCode.ErrorCodeTenIsClosed == 6
        and TenErrorCode.ErrorCodeInvalidJSON == 2
    )


def test_log_level_and_default_option():
    assert [
        LogLevel.INVALID,
        LogLevel.DEBUG,
        LogLevel.INFO,
        LogLevel.WARN,
        LogLevel.ERROR,
    ] == [0, 1, 2, 3, 4]
    assert (DefaultLogOption.skip, DefaultLogOption.sync) == (2, False)
