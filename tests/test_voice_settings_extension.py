"""Voice settings through the extension (issue 18), against the local server.

speed / temperature / voice_similarity / text_normalization are read per request:
``update_configs`` applies them to the next request without a new client, and the
listener hears it (the same text gets shorter at speed -2 and longer at +2, with
both local voices). Out-of-range values are FATAL at start and a refused
``update_configs``. A typed setting and the same ``json_config`` key: the typed one
is sent, and one warning names both.

Patches of the package go through ``harness.ext_module`` (the copy the TEN host
runs).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from gradium_server import ServerConfig, ServerThread
from gradium_server.config import espeak_available
from harness import KEY, errors, ext_module, frames_between, named, props, run_session

META = {"session_id": "s1", "turn_id": 1}
TEXT = "The quick brown fox jumps over the lazy dog near the river bank."


@pytest.fixture
def server():
    with ServerThread(ServerConfig.for_tests()) as srv:
        yield srv


def count_clients(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every GradiumTTSClient the extension builds, in order."""
    built: list[Any] = []
    module = ext_module("extension")
    base = module.GradiumTTSClient

    class Counted(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(module, "GradiumTTSClient", Counted)
    return built


def audio_s(records, request_id: str) -> float:
    frames = frames_between(records, request_id)
    assert frames, request_id
    return sum(len(f.pcm) for f in frames) / 2 / frames[0].sample_rate


# ------------------------------------------------------------- what one hears
@pytest.mark.parametrize("voice", ["synthetic", "espeak"])
def test_update_configs_speed_changes_the_next_requests_duration(monkeypatch, voice):
    if voice == "espeak" and not espeak_available():
        pytest.skip("eSpeak NG is not installed")
    clients = count_clients(monkeypatch)
    config = ServerConfig.for_tests(voice_engine=voice)
    voice_id = "synthetic" if voice == "synthetic" else "YTpq7expH9539ERJ"
    steps = [("r0", None), ("r1", -2.0), ("r2", 2.0), ("r3", 0.0)]

    with ServerThread(config) as srv:

        async def script(s):
            for request_id, speed in steps:
                if speed is not None:
                    status, result = await s.cmd(
                        "update_configs", {"params": {"speed": speed}}
                    )
                    assert status == 0, result
                await s.text(request_id, TEXT, end=True, metadata=META)
                await s.wait_end(request_id, timeout=20)

        sess = run_session(props(srv, voice_id=voice_id), script, timeout_s=60)
        setups = srv.received("setup")
        engines = [e.data["engine"] for e in srv.events_of("request_started")]

    assert engines == [voice] * 4
    assert not errors(sess.records)
    ends = named(sess.records, "tts_audio_end")
    assert [e.props["reason"] for e in ends] == [1, 1, 1, 1]
    # per request: the speed went out in the next setup, inside json_config
    assert [m["json_config"].get("padding_bonus") for m in setups] == [
        None,
        -2.0,
        2.0,
        0.0,
    ]
    assert all("speed" not in m and "padding_bonus" not in m for m in setups)
    assert len(clients) == 1  # a voice setting never rebuilds the client
    base, fast, slow, again = (audio_s(sess.records, r) for r, _ in steps)
    if voice == "synthetic":  # exact: duration x (1 + 0.15 x padding_bonus)
        assert fast / base == pytest.approx(0.7, abs=0.02)
        assert slow / base == pytest.approx(1.3, abs=0.02)
        assert again == pytest.approx(base, abs=0.01)
    else:  # eSpeak's words per minute: close to that, not exact
        assert 0.55 < fast / base < 0.85, (fast, base)
        assert 1.15 < slow / base < 1.45, (slow, base)
        assert again == pytest.approx(base, rel=0.05)


def test_every_setting_reaches_the_next_setup(monkeypatch, server):
    clients = count_clients(monkeypatch)
    new = {
        "temperature": 0.25,
        "voice_similarity": 3.5,
        "text_normalization": "NumberEn, EmailEn",
    }

    async def script(s):
        await s.text("r1", "Before.", end=True, metadata=META)
        await s.wait_end("r1")
        status, result = await s.cmd("update_configs", {"params": new})
        assert status == 0, result
        await s.text("r2", "After.", end=True, metadata=META)
        await s.wait_end("r2")
        status, result = await s.cmd(
            "update_configs", {"params": {"text_normalization": ""}}
        )
        assert status == 0, result
        await s.text("r3", "Normalization off.", end=True, metadata=META)
        await s.wait_end("r3")

    sess = run_session(props(server), script)
    assert not errors(sess.records)
    assert [m.get("json_config") for m in server.received("setup")] == [
        {"rewrite_rules": "en"},  # the default
        {"temp": 0.25, "cfg_coef": 3.5, "rewrite_rules": "NumberEn,EmailEn"},
        {"temp": 0.25, "cfg_coef": 3.5},  # "" turns normalization off
    ]
    started = server.events_of("request_started")
    assert [e.data["rewrite_rules"] for e in started] == [
        "en",
        "NumberEn,EmailEn",
        None,
    ]
    assert len(clients) == 1


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("param", "value", "shown"),
    [
        ("speed", -6, "params.speed = -6"),
        ("temperature", 1.5, "params.temperature = 1.5"),
        ("voice_similarity", 0.5, "params.voice_similarity = 0.5"),
        ("text_normalization", "it", "params.text_normalization: 'it'"),
    ],
)
def test_out_of_range_at_start_is_fatal_and_names_it(server, param, value, shown):
    async def script(s):
        await s.wait_for(lambda recs: errors(recs))
        await s.text("r1", "Hello.", end=True, metadata=META)
        await s.wait_end("r1")
        await s.wait_error("r1")

    sess = run_session(props(server, **{param: value}), script)
    first, second = errors(sess.records)
    assert first.props["code"] == -1000 and first.props["id"] == ""
    assert shown in first.props["message"], first.props["message"]
    assert first.props["vendor_info"]["vendor"] == "gradium"
    # the request fails FATAL too, and Gradium never sees the bad value
    assert second.props["code"] == -1000 and second.props["id"] == "r1"
    assert named(sess.records, "tts_audio_end")[0].props["reason"] == 3
    assert server.connection_attempts == 0


def test_a_range_error_says_the_range(server):
    async def script(s):
        await s.wait_for(lambda recs: errors(recs))

    sess = run_session(props(server, speed=4.5), script)
    message = errors(sess.records)[0].props["message"]
    assert "-4.0 to 4.0" in message and "negative is faster" in message


@pytest.mark.parametrize(
    ("update", "name"),
    [
        ({"speed": 4.5}, "params.speed"),
        ({"temperature": -1}, "params.temperature"),
        ({"voice_similarity": 9}, "params.voice_similarity"),
        ({"text_normalization": "klingon"}, "params.text_normalization"),
        ({"json_config": {"cfg_coef": 0}}, "params.json_config.cfg_coef"),
    ],
)
def test_an_out_of_range_update_is_refused_and_changes_nothing(
    monkeypatch, server, update, name
):
    clients = count_clients(monkeypatch)

    async def script(s):
        status, result = await s.cmd("update_configs", {"params": update})
        assert status == 1 and name in result["message"], result
        await s.text("r1", "Still the old settings.", end=True, metadata=META)
        await s.wait_end("r1")

    sess = run_session(props(server, speed=-1, temperature=0.5), script)
    assert named(sess.records, "tts_audio_end")[0].props["reason"] == 1
    assert not errors(sess.records)
    (setup,) = server.received("setup")
    assert setup["json_config"] == {
        "padding_bonus": -1.0,
        "temp": 0.5,
        "rewrite_rules": "en",
    }
    assert len(clients) == 1


# ----------------------------------------------------------- one source of truth
def test_typed_wins_over_json_config_with_one_warning(server, ten_log):
    raw = {"padding_bonus": 3, "max_padding": 7, "x_undocumented": "kept"}

    async def script(s):
        await s.text("r1", "One.", end=True, metadata=META)
        await s.wait_end("r1")
        # same conflict, other change: no second warning
        status, _ = await s.cmd("update_configs", {"params": {"model_name": "m2"}})
        assert status == 0
        await s.text("r2", "Two.", end=True, metadata=META)
        await s.wait_end("r2")
        # a new conflict: its own warning
        status, _ = await s.cmd(
            "update_configs",
            {"params": {"json_config": {**raw, "temp": 0.9}, "temperature": 0.1}},
        )
        assert status == 0
        await s.text("r3", "Three.", end=True, metadata=META)
        await s.wait_end("r3")

    sess = run_session(props(server, speed=-1.0, json_config=raw), script)
    assert not errors(sess.records)
    sent = [m["json_config"] for m in server.received("setup")]
    expected = {**raw, "padding_bonus": -1.0, "rewrite_rules": "en"}
    assert sent == [expected, expected, {**expected, "temp": 0.1}]
    warnings = [m for m in ten_log.messages("warn") if "are both set" in m]
    assert warnings == [
        "params.speed and params.json_config.padding_bonus are both set: "
        "params.speed is used",
        "params.temperature and params.json_config.temp are both set: "
        "params.temperature is used",
    ]


def test_unknown_rule_names_are_sent_with_a_warning(server, caplog, ten_log):
    caplog.set_level(logging.INFO)

    async def script(s):
        await s.text("r1", "Rule names.", end=True, metadata=META)
        await s.wait_end("r1")

    run_session(props(server, text_normalization="NumberEn,RomanNumerals"), script)
    (setup,) = server.received("setup")
    assert setup["json_config"] == {"rewrite_rules": "NumberEn,RomanNumerals"}
    assert any("RomanNumerals" in m for m in ten_log.messages("warn"))
    assert KEY not in ten_log.text()
    assert KEY not in " ".join(r.getMessage() for r in caplog.records)
