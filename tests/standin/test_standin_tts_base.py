"""AsyncTTS2BaseExtension behaviour (contract §2.2-§2.5), through the public tester API."""

from __future__ import annotations

import json

import standin_probe_ext  # noqa: F401  (the probes; conftest installs their addons)
from standin_probe_ext.harness import Recorder, data, ended, flush, run, text_input
from ten_runtime import Cmd, StatusCode

TTS = "standin_probe_tts"


def test_interleaved_requests_complete_one_after_another():
    # The guarder's interleaving; 3 and 7 are single-chunk requests.
    order = [
        (1, False), (1, False), (1, False), (2, False), (2, False), (1, False), (1, False),
        (3, True), (2, False), (2, True), (1, True), (4, False), (4, False), (5, False),
        (6, False), (6, False), (7, True), (8, False), (8, False), (4, True), (6, True),
        (5, True), (8, True),
    ]  # fmt: skip
    sends = [
        text_input(f"r{n}", f"t{n}", end, {"session_id": "s", "turn_id": n})
        for n, end in order
    ]
    tester = Recorder(sends, until=ended("r8"))
    assert run(tester, TTS) is None

    expected = []
    for n in range(1, 9):
        chunks = sum(1 for m, _ in order if m == n)
        expected += (
            [("start", f"r{n}")] + [("frame", 4)] * chunks + [("end", f"r{n}", 1)]
        )
    assert tester.audio_sequence() == expected
    for start in tester.named("tts_audio_start"):
        n = int(start["request_id"][1:])
        assert start["metadata"] == {"session_id": "s", "turn_id": n}
    frames = [p for kind, _, p in tester.events if kind == "frame"]
    assert [f["metadata"]["turn_id"] for f in frames] == [
        n for n in range(1, 9) for m, _ in order if m == n
    ]


def test_requests_are_taken_in_order_of_first_appearance():
    sends = [
        text_input("A", "a1"),
        text_input("B", "b1"),
        text_input("C", "c1", True),
        text_input("B", "b2", True),
        text_input("A", "a2", True),
    ]
    tester = Recorder(sends, until=ended("C"))
    assert run(tester, TTS) is None
    assert tester.audio_sequence() == [
        ("start", "A"), ("frame", 4), ("frame", 4), ("end", "A", 1),
        ("start", "B"), ("frame", 4), ("frame", 4), ("end", "B", 1),
        ("start", "C"), ("frame", 4), ("end", "C", 1),
    ]  # fmt: skip


def test_flush_ends_active_request_then_echoes_flush_and_drops_buffered(probe_events):
    meta = {"session_id": "s", "extra": 5}

    async def on_event(rec, env, event):
        kind, name, payload = event
        if kind == "frame" and len([e for e in rec.events if e[0] == "frame"]) == 1:
            await env.send_data(flush("f1", meta))
        if kind == "data" and name == "tts_flush_end":
            await env.send_data(text_input("C", "c", True))

    sends = [
        text_input("A", "a", False, {"session_id": "s", "turn_id": 1}),
        text_input("B", "b", True),
    ]
    tester = Recorder(sends, until=ended("C"), on_event=on_event)
    assert run(tester, TTS) is None

    seq = [
        (e[1], e[2].get("request_id"), e[2].get("reason"))
        if e[0] == "data"
        else ("frame",)
        for e in tester.events
        if e[1] != "metrics"
    ]
    assert seq == [
        ("tts_audio_start", "A", None),
        ("frame",),
        ("tts_audio_end", "A", 2),
        ("tts_flush_end", None, None),
        ("tts_audio_start", "C", None),
        ("frame",),
        ("tts_audio_end", "C", 1),
    ]
    assert tester.named("tts_flush_end") == [{"flush_id": "f1", "metadata": meta}]
    assert tester.named("tts_audio_end")[0]["metadata"] == {
        "session_id": "s",
        "turn_id": 1,
    }
    assert ("cancel_tts", "A") in probe_events
    assert not [e for e in probe_events if e[0] == "request_tts" and e[1] == "B"]


def test_flush_does_not_cancel_the_running_request_tts(probe_events):
    async def on_event(rec, env, event):
        if event[1] == "tts_audio_start":
            await env.send_data(flush("f2"))

    def frame_after_flush_end(rec):
        names = [e[1] for e in rec.events]
        return (
            "tts_flush_end" in names and names.index("tts_flush_end") < len(names) - 1
        )

    sends = [text_input("A", "sleep:400", False, {"session_id": "s", "turn_id": 1})]
    tester = Recorder(sends, until=frame_after_flush_end, on_event=on_event)
    assert run(tester, TTS, timeout_s=5) is None
    assert [(e[0], e[1]) for e in tester.events if e[1] != "metrics"] == [
        ("data", "tts_audio_start"),
        ("data", "tts_audio_end"),
        ("data", "tts_flush_end"),
        ("frame", "pcm_frame"),
    ]
    assert tester.named("tts_audio_end")[0]["reason"] == 2
    # The late frame carries {} because the flush cleared the stored metadata.
    assert tester.events[-1][2]["metadata"] == {}
    assert ("woke", "A") in probe_events


def test_partial_samples_are_carried_over_between_frames():
    sends = [text_input("A", "bytes:3"), text_input("A", "bytes:3", True)]
    tester = Recorder(sends, until=ended("A"))
    assert run(tester, TTS) is None
    frames = [p for kind, _, p in tester.events if kind == "frame"]
    assert [f["buf"] for f in frames] == [b"\x01\x02", b"\x03\x01\x02\x03"]
    assert [f["samples"] for f in frames] == [1, 2]
    f = frames[0]
    assert (f["sample_rate"], f["bytes_per_sample"], f["channels"]) == (16000, 2, 1)
    assert f["fmt"] == 1 and type(f["fmt"]) is int
    assert {name for kind, name, _ in tester.events if kind == "frame"} == {"pcm_frame"}


def test_metadata_comes_from_the_first_chunk_only():
    first = {"session_id": "s1", "turn_id": 1}
    sends = [
        text_input("A", "a1", False, first),
        text_input("A", "a2", True, {"session_id": "OTHER", "turn_id": 99}),
    ]
    tester = Recorder(sends, until=ended("A"))
    assert run(tester, TTS) is None
    assert tester.named("tts_audio_start")[0]["metadata"] == first
    assert tester.named("tts_audio_end")[0]["metadata"] == first
    frames = [p for kind, _, p in tester.events if kind == "frame"]
    assert [f["metadata"] for f in frames] == [first, first]


def test_error_payload_has_int_code_and_vendor_info():
    codes = []

    async def on_event(rec, env, event):
        pass

    class ErrorRecorder(Recorder):
        async def on_data(self, ten_env, msg):
            if msg.get_name() == "error":
                codes.append(msg.get_property_int("code"))
            await super().on_data(ten_env, msg)

    tester = ErrorRecorder(
        [text_input("A", "fail", True, {"session_id": "s", "turn_id": 3})],
        until=lambda r: bool(r.named("error")),
    )
    assert run(tester, TTS) is None
    assert tester.named("error") == [
        {
            "id": "A",
            "code": -1000,
            "module": "tts",
            "message": "probe failure",
            "vendor_info": {"vendor": "probe", "code": "401", "message": "denied"},
            "metadata": {"session_id": "s", "turn_id": 3},
        }
    ]
    value, err = codes[0]
    assert (value, err) == (-1000, None)


class _CmdTester(Recorder):
    def __init__(self, payload: dict) -> None:
        super().__init__()
        self.payload = payload
        self.result = None

    async def on_start(self, ten_env):
        cmd = Cmd.create("update_configs")
        cmd.set_property_from_json(None, json.dumps(self.payload))
        result, err = await ten_env.send_cmd(cmd)
        assert err is None
        self.result = (result.get_status_code(), result.get_property_string("message"))
        ten_env.stop_test()


def test_update_configs_ok(probe_events):
    tester = _CmdTester({"params": {"voice": "v2"}})
    assert run(tester, TTS) is None
    assert tester.result[0] == StatusCode.OK
    assert ("update_configs", {"params": {"voice": "v2"}}) in probe_events


def test_update_configs_error_returns_message():
    tester = _CmdTester({"fail": True})
    assert run(tester, TTS) is None
    status, (message, err) = tester.result
    assert status == StatusCode.ERROR
    assert (message, err) == ("bad config: fail", None)


def test_other_commands_return_ok():
    class T(Recorder):
        async def on_start(self, ten_env):
            result, err = await ten_env.send_cmd(Cmd.create("anything"))
            self.status = (result.get_status_code(), err)
            ten_env.stop_test()

    tester = T()
    assert run(tester, TTS) is None
    assert tester.status == (StatusCode.OK, None)


def test_usage_metrics_are_sent_at_stop_even_after_stop_test():
    tester = Recorder([text_input("A", "bytes:32000", True)], until=ended("A"))
    assert run(tester, TTS) is None
    metrics = tester.named("metrics")
    assert len(metrics) == 1
    m = metrics[0]
    assert (m["module"], m["vendor"]) == ("tts", "probe")
    assert isinstance(m["id"], str)
    assert m["metrics"] == {
        "output_characters": len("bytes:32000"),
        "input_characters": 0,
        "recv_audio_duration": 1000,
        "total_output_characters": len("bytes:32000"),
        "total_input_characters": 0,
        "total_recv_audio_duration": 1000,
    }
    names = [e[1] for e in tester.events]
    assert names.index("metrics") > names.index("tts_audio_end")


def test_invalid_text_input_is_dropped_and_later_input_works(probe_events):
    sends = [data("tts_text_input", {"text": "no id"}), text_input("A", "a", True)]
    tester = Recorder(sends, until=ended("A"))
    assert run(tester, TTS) is None
    assert [e for e in probe_events if e[0] == "request_tts"] == [
        ("request_tts", "A", "a", True)
    ]
    # The message-level "required" of the interface is not enforced by the runtime:
    # the message reached on_data and the base class's pydantic check dropped it.
    assert [e for e in probe_events if e[0] == "on_data"][:2] == [
        ("on_data", "tts_text_input"),
        ("on_data", "tts_text_input"),
    ]
