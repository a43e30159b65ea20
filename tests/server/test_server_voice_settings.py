"""The local server's json_config model settings (reference §2.1, issue 18):
``padding_bonus`` changes how long the same text takes to say, with both voices;
``temp``, ``cfg_coef`` and ``rewrite_rules`` are checked and logged; a value out of
Gradium's documented range gets Gradium's error shape: ``error`` 1008, then close
1008."""

from __future__ import annotations

import pytest
from gradium_server.config import espeak_available

TEXT = "The quick brown fox jumps over the lazy dog near the river bank."
RATE = 16000


async def duration_s(url: str, h, padding_bonus: float | None) -> float:
    setup = {"output_format": f"pcm_{RATE}"}
    if padding_bonus is not None:
        setup["json_config"] = {"padding_bonus": padding_bonus}
    res = await h.synth(url, TEXT, **setup)
    assert res.of("end_of_stream"), res.messages[-3:]
    return len(res.audio()) / 2 / RATE


async def test_padding_bonus_changes_the_synthetic_voice_duration(gradium_server, h):
    url = gradium_server.url
    base = await duration_s(url, h, None)
    assert await duration_s(url, h, 0) == base  # 0 is Gradium's default
    faster = await duration_s(url, h, -2)
    slower = await duration_s(url, h, 2)
    # negative is faster: about 30 % shorter at -2, 30 % longer at +2 (§2.1)
    assert faster / base == pytest.approx(0.7, abs=0.02)
    assert slower / base == pytest.approx(1.3, abs=0.02)
    assert await duration_s(url, h, -4) < faster
    assert await duration_s(url, h, 4) > slower


@pytest.mark.skipif(not espeak_available(), reason="eSpeak NG is not installed")
async def test_padding_bonus_changes_the_espeak_speaking_rate(make_server, h):
    server = await make_server(voice_engine="espeak")
    url = server.url
    base = await duration_s(url, h, None)
    faster = await duration_s(url, h, -2)
    slower = await duration_s(url, h, 2)
    assert 0.55 < faster / base < 0.85, (faster, base)
    assert 1.15 < slower / base < 1.45, (slower, base)
    started = server.events_of("request_started")
    assert [e.data["engine"] for e in started] == ["espeak"] * 3


async def test_valid_settings_are_logged(gradium_server, h):
    cfg = {"padding_bonus": -1.5, "temp": 0.2, "cfg_coef": 3, "rewrite_rules": "en"}
    res = await h.synth(gradium_server.url, "hi", json_config=cfg)
    assert res.of("end_of_stream")
    (started,) = gradium_server.events_of("request_started")
    assert {k: started.data[k] for k in cfg} == cfg
    assert started.data["duration_factor"] == pytest.approx(0.775)
    assert not gradium_server.events_of("unknown_rewrite_rules")


async def test_unknown_rule_names_are_logged_not_refused(gradium_server, h):
    res = await h.synth(
        gradium_server.url, "hi", json_config={"rewrite_rules": "NumberEn, Roman"}
    )
    assert res.of("end_of_stream") and not res.error
    (event,) = gradium_server.events_of("unknown_rewrite_rules")
    assert event.data["rules"] == ["Roman"]
    (started,) = gradium_server.events_of("request_started")
    assert started.data["rewrite_rules"] == "NumberEn,Roman"


@pytest.mark.parametrize(
    ("cfg", "key"),
    [
        ({"padding_bonus": -4.5}, "padding_bonus"),
        ({"padding_bonus": 4.01}, "padding_bonus"),
        ({"temp": 1.5}, "temp"),
        ({"temp": -0.1}, "temp"),
        ({"cfg_coef": 0.9}, "cfg_coef"),
        ({"cfg_coef": 5}, "cfg_coef"),
        ({"temp": "hot"}, "temp"),
        ({"cfg_coef": True}, "cfg_coef"),
        ({"rewrite_rules": ["en"]}, "rewrite_rules"),
    ],
)
async def test_out_of_range_gets_error_1008_then_close(gradium_server, h, cfg, key):
    res = await h.synth(gradium_server.url, "hi", json_config=cfg)
    assert res.of("error") == [res.error]
    assert res.error["code"] == 1008 and key in res.error["message"]
    assert set(res.error) == {"type", "message", "code"}  # §3.5
    assert res.close_code == 1008
    assert not res.of("ready") and not res.audio()


async def test_out_of_range_when_multiplexed_names_the_request_and_closes(
    gradium_server, h
):
    res = await h.synth(
        gradium_server.url,
        "hi",
        client_req_id="req-7",
        close_ws_on_eos=False,
        json_config='{"padding_bonus": 9}',
    )
    assert res.error == {
        "type": "error",
        "message": res.error["message"],
        "code": 1008,
        "client_req_id": "req-7",
    }
    assert "padding_bonus" in res.error["message"] and "9" in res.error["message"]
    assert res.close_code == 1008 and not res.of("ready")


# --------------------------------------- numbers in the language of rewrite_rules
@pytest.mark.parametrize(
    ("rules", "language"),
    [
        ("fr", "fr"),
        ("pt", "pt"),
        ("NumberDe,UrlEn", "de"),
        ("TimeEn, NumberEs", "es"),
        ("en,NumberFr", "en"),  # the first one decides
        ("TimeEn,Date", None),  # no number rule
        ("", None),
        (None, None),
    ],
)
def test_the_number_language_of_rewrite_rules(rules, language):
    from gradium_server.voices import number_language

    assert number_language(rules) == language


# What eSpeak NG says for "123" (IPA), per language: "one hundred twenty three",
# "cent vingt-trois", "einhundert drei und zwanzig", "ciento veintitrés",
# "cento e vinte e três".
ONE_TWO_THREE = {
    "en": "wˈʌnhˈʌndɹɪd twˈɛnti θɹˈiː",
    "fr": "sɑ̃ vɛ̃ttʁwˈa",
    "de": "ˈaɪnhˈʊndɜt dɾˈaɪ ʊnttsvˈantsɪç",
    "es": "θjˈento βˌeɪntitɾˈes",
    "pt": "sˈeɪŋtui vˈiŋtɨitɹˈeʃ",
}


@pytest.mark.skipif(not espeak_available(), reason="eSpeak NG is not installed")
async def test_espeak_reads_numbers_by_the_rewrite_rules_language(make_server, h):
    server = await make_server(voice_engine="espeak")
    seconds = {}
    for language in [None, *ONE_TWO_THREE]:
        setup = {"output_format": f"pcm_{RATE}"}
        if language is not None:
            setup["json_config"] = {"rewrite_rules": language}
        res = await h.synth(server.url, "I have 123 cats.", **setup)
        assert res.of("end_of_stream") and not res.error
        seconds[language] = len(res.audio()) / 2 / RATE
    started = server.events_of("request_started")
    assert [e.data["numbers"] for e in started] == [None, *ONE_TWO_THREE]
    spoken = [e.data["phonemes"] for e in server.events_of("spoken")]
    assert len(spoken) == 6
    # without rules, and with en: eSpeak's English; otherwise the language's words
    # for the number, and English for the rest ("cats")
    for phonemes, language in zip(spoken, ["en", *ONE_TWO_THREE], strict=True):
        assert ONE_TWO_THREE[language] in phonemes, (language, phonemes)
        others = [v for k, v in ONE_TWO_THREE.items() if k != language]
        assert not any(other in phonemes for other in others), phonemes
        assert "kˈæts" in phonemes
    # and one hears it: "cent vingt-trois" is shorter than "one hundred twenty three"
    assert seconds["fr"] < seconds["en"] - 0.2, seconds


async def test_the_synthetic_voice_has_no_phonemes_to_record(gradium_server, h):
    res = await h.synth(gradium_server.url, "123", json_config={"rewrite_rules": "fr"})
    assert res.of("end_of_stream")
    assert gradium_server.events_of("request_started")[0].data["numbers"] == "fr"
    assert not gradium_server.events_of("spoken")
