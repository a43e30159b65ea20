"""Voice settings through the extension (issues 18, 23), against the local server.

speed / temperature / voice_similarity / text_normalization / language are read
per request: ``update_configs`` applies them to the next request without a new
client, and the listener hears it (the same text gets shorter at speed 1.5 and
longer at 0.75 than at 1.0, with both local voices; with language fr the eSpeak
voice says "123" in French). Out-of-range values are FATAL at start and a refused
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
    # speed (TEN's multiplier) -> padding_bonus = -4 * log2(speed)
    steps = [("r0", None), ("r1", 1.5), ("r2", 0.75), ("r3", 1.0)]

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
        -2.34,
        1.66,
        0.0,
    ]
    assert all("speed" not in m and "padding_bonus" not in m for m in setups)
    assert len(clients) == 1  # a voice setting never rebuilds the client
    base, fast, slow, normal = (audio_s(sess.records, r) for r, _ in steps)
    # 1.5 is shorter and 0.75 longer than 1.0, the same text
    assert fast < normal < slow, (fast, normal, slow)
    if voice == "synthetic":  # exact: duration x (1 + 0.15 x padding_bonus)
        assert fast / normal == pytest.approx(0.649, abs=0.02)
        assert slow / normal == pytest.approx(1.249, abs=0.02)
        assert normal == pytest.approx(base, abs=0.01)  # 1.0 is Gradium's default
    else:  # eSpeak's words per minute: close to that, not exact
        assert 0.5 < fast / normal < 0.8, (fast, normal)
        assert 1.1 < slow / normal < 1.4, (slow, normal)
        assert normal == pytest.approx(base, rel=0.05)


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


# ------------------------------------------------------ language (issue 23)
# What the local eSpeak NG voice says for "123" (IPA, as its "spoken" events
# record it): "one hundred twenty three", "cent vingt-trois", "cento e vinte e
# três", "einhundert drei und zwanzig".
SAYS_123 = {
    "en": "wˈʌnhˈʌndɹɪd twˈɛnti θɹˈiː",
    "fr": "sɑ̃ vɛ̃ttʁwˈa",
    "pt": "sˈeɪŋtui vˈiŋtɨitɹˈeʃ",
    "de": "ˈaɪnhˈʊndɜt dɾˈaɪ ʊnttsvˈantsɪç",
}
NUMBERS = "Order 123 is ready."
ESPEAK_VOICE = "YTpq7expH9539ERJ"  # any voice but "synthetic": the eSpeak engine


def said_123(server, n: int) -> list[str]:
    """The language of each eSpeak utterance that held "123", in order."""
    spoken = [e.data["phonemes"] for e in server.events_of("spoken")]
    found = [
        [lang for lang, ipa in SAYS_123.items() if ipa in phonemes]
        for phonemes in spoken
    ]
    assert len(found) == n, spoken
    assert all(len(langs) == 1 for langs in found), spoken
    return [langs[0] for langs in found]


@pytest.mark.skipif(not espeak_available(), reason="eSpeak NG is not installed")
def test_a_graph_copied_from_another_ten_tts_node_speaks_faster_with_french_rules():
    # A node copied from cartesia / elevenlabs / minimax: speed is a multiplier and
    # language a BCP-47 tag. Nothing else changes in the graph.
    copied = {"speed": 1.2, "language": "fr-FR"}

    async def script(s):
        await s.text("r1", NUMBERS, end=True, metadata=META)
        await s.wait_end("r1", timeout=20)

    with ServerThread(ServerConfig.for_tests(voice_engine="espeak")) as srv:
        before = run_session(props(srv, voice_id=ESPEAK_VOICE), script, timeout_s=60)
        same_normal = run_session(
            props(srv, voice_id=ESPEAK_VOICE, language="fr-FR"), script, timeout_s=60
        )
        after = run_session(
            props(srv, voice_id=ESPEAK_VOICE, **copied), script, timeout_s=60
        )
        setups = [m["json_config"] for m in srv.received("setup")]
        said = said_123(srv, 3)

    for sess in (before, same_normal, after):
        assert not errors(sess.records)
        assert named(sess.records, "tts_audio_end")[0].props["reason"] == 1
    assert setups == [
        {"rewrite_rules": "en"},  # the default node: English rules
        {"rewrite_rules": "fr"},
        {"padding_bonus": -1.052, "rewrite_rules": "fr"},  # faster, French rules
    ]
    assert said == ["en", "fr", "fr"]  # "123" is "cent vingt-trois" once fr is set
    # faster: the same text, the same rules, shorter than at normal speed
    normal, fast = audio_s(same_normal.records, "r1"), audio_s(after.records, "r1")
    assert 0.7 < fast / normal < 0.95, (fast, normal)


@pytest.mark.skipif(not espeak_available(), reason="eSpeak NG is not installed")
def test_update_configs_language_applies_to_the_next_request(monkeypatch):
    clients = count_clients(monkeypatch)
    updates = [
        ("r1", None),
        ("r2", {"language": "fr"}),
        ("r3", {"language": "PT-br"}),
        ("r4", {"text_normalization": "NumberDe"}),  # wins over language pt
        ("r5", {"text_normalization": None, "language": "en-GB"}),
    ]

    async def script(s):
        for request_id, update in updates:
            if update is not None:
                status, result = await s.cmd("update_configs", {"params": update})
                assert status == 0, result
            await s.text(request_id, NUMBERS, end=True, metadata=META)
            await s.wait_end(request_id, timeout=20)

    with ServerThread(ServerConfig.for_tests(voice_engine="espeak")) as srv:
        sess = run_session(props(srv, voice_id=ESPEAK_VOICE), script, timeout_s=60)
        rules = [m["json_config"]["rewrite_rules"] for m in srv.received("setup")]
        said = said_123(srv, 5)

    assert not errors(sess.records)
    assert rules == ["en", "fr", "pt", "NumberDe", "en"]
    assert said == ["en", "fr", "pt", "de", "en"]
    assert len(clients) == 1  # the language never rebuilds the client


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("param", "value", "shown"),
    [
        ("speed", -2, "params.speed = -2.0 is refused: speed is now a multiplier"),
        ("speed", 0, "params.speed = 0.0 is refused: speed is now a multiplier"),
        ("speed", 2.5, "params.speed = 2.5 is out of range: it takes 0.5 to 2.0"),
        ("language", "it", "params.language = 'it' is not supported"),
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
    assert message == (
        "params.speed = 4.5 is out of range: it takes 0.5 to 2.0 "
        "(1.0 normal, bigger is faster)"
    )


@pytest.mark.parametrize(
    ("update", "name"),
    [
        ({"speed": 4.5}, "params.speed = 4.5 is out of range"),
        ({"speed": -1}, "params.speed = -1.0 is refused"),
        ({"language": "klingon"}, "params.language = 'klingon' is not supported"),
        ({"language": "zh-CN"}, "params.language = 'zh-CN' is not supported"),
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

    sess = run_session(
        props(server, speed=1.2, temperature=0.5, language="de"), script
    )
    assert named(sess.records, "tts_audio_end")[0].props["reason"] == 1
    assert not errors(sess.records)
    (setup,) = server.received("setup")
    assert setup["json_config"] == {
        "padding_bonus": -1.052,
        "temp": 0.5,
        "rewrite_rules": "de",
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

    sess = run_session(props(server, speed=1.2, json_config=raw), script)
    assert not errors(sess.records)
    sent = [m["json_config"] for m in server.received("setup")]
    expected = {**raw, "padding_bonus": -1.052, "rewrite_rules": "en"}
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
