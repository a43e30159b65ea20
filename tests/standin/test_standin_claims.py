"""Verified runtime claims that the other stand-in test files do not reach.

Each test names the contract section it holds (see standalone/stubs/README.md).
"""

from __future__ import annotations

import standin_probe_ext  # noqa: F401  (the probes; conftest installs their addons)
from standin_probe_ext.harness import Recorder, data, ended, run, text_input
from ten_runtime import AsyncExtensionTester, AudioFrameDataFmt

BASIC = "standin_probe_basic"
TTS = "standin_probe_tts"


def test_is_property_exist_on_a_missing_path_is_false_without_error():
    # §1.5: is_property_exist(path) -> (bool, err); a missing path gives (False, None).
    reads = [["exists", "a"], ["exists", "params.x"], ["exists", "nope"]]
    tester = Recorder([data("get", {"reads": reads})], until=lambda r: r.named("got"))
    assert run(tester, BASIC) is None
    got = tester.named("got")[0]
    assert got["exists:a"] == [True, None, None]
    assert got["exists:params.x"] == [True, None, None]
    assert got["exists:nope"] == [False, None, None]


def test_env_set_property_from_json_with_text_that_is_not_json_raises():
    # §1.5 (observed): it raises, it does not return an error.
    tester = Recorder(
        [data("set_bad_json")], until=lambda r: r.named("set_bad_json_done")
    )
    assert run(tester, BASIC) is None
    assert tester.named("set_bad_json_done") == [
        {"raised": "Failed to parse json when ten_env.set_property_from_json_async."}
    ]


def test_send_without_waiting_returns_none_even_to_an_unknown_destination():
    # §1.5 (verified): no error for a set_dests to an extension that does not exist.
    spec = {
        "name": "tts_audio_start",
        "props": {"request_id": "r"},
        "dests": ["no_such_extension"],
    }
    tester = Recorder([data("probe_send", spec)], until=lambda r: r.named("probe_sent"))
    assert run(tester, TTS) is None
    assert [p["err"] for p in tester.named("probe_sent")] == [None]


def test_a_received_audio_frame_carries_what_was_set():
    # §1.6 (verified): fields, a bytearray copy, a writable lock_buf, line_size 0,
    # is_eof False, and get_data_fmt a plain int that equals the enum member.
    seen: list[dict] = []

    class T(Recorder):
        async def on_audio_frame(self, ten_env, frame):
            view = frame.lock_buf()
            writable = not view.readonly
            frame.unlock_buf(view)
            fmt = frame.get_data_fmt()
            seen.append(
                {
                    "name": frame.get_name(),
                    "buf": frame.get_buf(),
                    "writable": writable,
                    "line_size": frame.get_line_size(),
                    "eof": frame.is_eof(),
                    "fmt": fmt,
                    "fmt_type": type(fmt),
                    "rate": frame.get_sample_rate(),
                    "bps": frame.get_bytes_per_sample(),
                    "channels": frame.get_number_of_channels(),
                    "samples": frame.get_samples_per_channel(),
                }
            )
            await super().on_audio_frame(ten_env, frame)

    tester = T(
        [text_input("A", "bytes:8", True)], until=lambda r: r.named("tts_audio_end")
    )
    assert run(tester, TTS) is None
    (frame,) = seen
    assert frame["name"] == "pcm_frame"
    assert type(frame["buf"]) is bytearray and frame["buf"] == bytearray(range(1, 9))
    assert frame["writable"] is True
    assert (frame["line_size"], frame["eof"]) == (0, False)
    assert frame["fmt_type"] is int and frame["fmt"] == AudioFrameDataFmt.INTERLEAVE
    assert (frame["rate"], frame["bps"], frame["channels"], frame["samples"]) == (
        16000,
        2,
        1,
        4,
    )


def test_the_default_tester_timeout_is_three_minutes():
    # §1.8 (verified): with no set_timeout, run() gives up after 180 s.
    assert AsyncExtensionTester()._ten_timeout_us == 180_000_000


def test_extra_metadata_of_audio_start_stays_in_that_message():
    # §2.3 (verified): extra_metadata of send_tts_audio_start is in that message
    # only, not in later frames or in tts_audio_end.
    first = {"session_id": "s1", "turn_id": 1}
    tester = Recorder([text_input("A", "xmeta", True, first)], until=ended("A"))
    assert run(tester, TTS) is None
    assert tester.named("tts_audio_start")[0]["metadata"] == {**first, "probe_extra": 1}
    frames = [p for kind, _, p in tester.events if kind == "frame"]
    assert [f["metadata"] for f in frames] == [first]
    assert tester.named("tts_audio_end")[0]["metadata"] == first
