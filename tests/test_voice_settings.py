"""Voice settings (issues 18, 23): speed, temperature, voice_similarity,
text_normalization and language, typed params that reach Gradium inside the
setup's ``json_config`` under Gradium's names (reference §2.1), range-checked, and
winning over the same key in ``json_config``. ``speed`` is TEN's multiplier (1.0
normal, bigger faster, 0.5 to 2.0), sent as ``padding_bonus = -4 * log2(speed)``;
``language`` (en, fr, de, es, pt, or a BCP-47 tag) picks the default
``rewrite_rules``.

Pure config tests: they import ``config`` directly (no TEN host involved).
"""

from __future__ import annotations

import json
import math

import pytest
from harness import ext_module

NORMALIZATION_RULES = ext_module("config").NORMALIZATION_RULES
ConfigError = ext_module("config").ConfigError
GradiumTTSConfig = ext_module("config").GradiumTTSConfig
unknown_rewrite_rules = ext_module("config").unknown_rewrite_rules
speed_to_padding_bonus = ext_module("config").speed_to_padding_bonus

KEY = "gsk_live_0123456789abcdef"


def make(**params):
    return GradiumTTSConfig.from_properties({"params": {"api_key": KEY, **params}})


def sent(**params) -> dict:
    """The setup fields as they go on the wire (a JSON round trip included)."""
    return json.loads(json.dumps(make(**params).setup_fields()))


# ------------------------------------------------------------------ the wire
def test_typed_settings_go_inside_json_config_under_gradiums_names():
    fields = sent(
        speed=2, temperature=0.4, voice_similarity=3, text_normalization="fr"
    )
    assert fields["json_config"] == {
        "padding_bonus": -4.0,
        "temp": 0.4,
        "cfg_coef": 3.0,
        "rewrite_rules": "fr",
    }
    # §2.1: there is no top-level speed (or padding_bonus...) in setup
    for key in (
        "speed",
        "temperature",
        "voice_similarity",
        "text_normalization",
        "language",
    ):
        assert key not in fields
    for key in ("padding_bonus", "temp", "cfg_coef", "rewrite_rules"):
        assert key not in fields


def test_defaults_send_only_the_default_text_normalization():
    config = make()
    assert (config.speed, config.temperature, config.voice_similarity) == (
        None,
        None,
        None,
    )
    # Gradium's own defaults apply to what is not sent; normalization is "en"
    assert sent()["json_config"] == {"rewrite_rules": "en"}


def test_empty_text_normalization_turns_it_off():
    assert "json_config" not in sent(text_normalization="")
    assert "json_config" not in sent(text_normalization="  ")
    fields = sent(text_normalization="", json_config={"rewrite_rules": "en"})
    assert "json_config" not in fields  # off, also over json_config (typed wins)
    assert sent(text_normalization="", speed=1)["json_config"] == {
        "padding_bonus": 0.0
    }


@pytest.mark.parametrize(
    ("given", "wire"),
    [
        ("en", "en"),
        ("pt", "pt"),
        ("NumberEn, UrlEn ,EmailEn", "NumberEn,UrlEn,EmailEn"),
        ("TimeEn,Date", "TimeEn,Date"),
        ("de,NumberFr", "de,NumberFr"),
        ("en,", "en"),
    ],
)
def test_text_normalization_aliases_and_rule_lists(given, wire):
    assert sent(text_normalization=given)["json_config"] == {"rewrite_rules": wire}


@pytest.mark.parametrize("bad", ["it", "english", "Number-En", "en;fr", "*"])
def test_an_unknown_alias_or_malformed_rule_is_a_clear_error(bad):
    with pytest.raises(ConfigError) as info:
        make(text_normalization=bad)
    text = str(info.value)
    assert text.startswith("params.text_normalization: ")
    assert "en, fr, de, es, pt" in text and "NumberEn" in text


def test_a_secret_pasted_into_text_normalization_is_not_echoed():
    secret = "gsk_live_0123456789abcdef"
    with pytest.raises(ConfigError) as info:
        make(text_normalization=secret)
    assert secret not in str(info.value) and "0123456789" not in str(info.value)


def test_rule_names_gradium_does_not_document_are_passed_on():
    fields = sent(text_normalization="NumberEn,SpellOutRoman")
    assert fields["json_config"] == {"rewrite_rules": "NumberEn,SpellOutRoman"}
    assert unknown_rewrite_rules("NumberEn,SpellOutRoman,en") == ["SpellOutRoman"]
    assert {"NumberEn", "UrlEn", "EmailEn", "TimeEn", "Date"} <= NORMALIZATION_RULES


# ------------------------------------------------------------------- ranges
@pytest.mark.parametrize(
    ("name", "value", "key", "range_text"),
    [
        ("temperature", -0.1, "temp", "0.0 to 1.4"),
        ("temperature", 1.5, "temp", "0.0 to 1.4"),
        ("voice_similarity", 0.5, "cfg_coef", "1.0 to 4.0"),
        ("voice_similarity", 4.2, "cfg_coef", "1.0 to 4.0"),
    ],
)
def test_out_of_range_names_the_property_the_value_and_the_range(
    name, value, key, range_text
):
    with pytest.raises(ConfigError) as info:
        make(**{name: value})
    text = str(info.value)
    assert f"params.{name} = {value}" in text
    assert range_text in text and key in text


@pytest.mark.parametrize("value", [0.49, 2.01, 3, 4.0, 100])
def test_speed_outside_its_range_names_the_value_and_the_range(value):
    with pytest.raises(ConfigError) as info:
        make(speed=value)
    assert str(info.value) == (
        f"params.speed = {float(value)} is out of range: it takes 0.5 to 2.0 "
        "(1.0 normal, bigger is faster)"
    )


@pytest.mark.parametrize("value", [0, 0.0, -0.5, -2, -4])
def test_a_speed_in_the_old_meaning_is_refused_saying_what_changed(value):
    with pytest.raises(ConfigError) as info:
        make(speed=value)
    text = str(info.value)
    assert text.startswith(f"params.speed = {float(value)} is refused: ")
    assert "now a multiplier" in text and "0.5 to 2.0" in text
    assert "1.0 normal, bigger is faster" in text
    # where the old meaning went
    assert "padding_bonus" in text and "params.json_config.padding_bonus" in text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("speed", 0.5),
        ("speed", 2),
        ("speed", 1),
        ("temperature", 0),
        ("temperature", 1.4),
        ("voice_similarity", 1),
        ("voice_similarity", 4.0),
    ],
)
def test_the_ends_of_each_range_are_accepted(name, value):
    config = make(**{name: value})
    assert getattr(config, name) == value


@pytest.mark.parametrize(
    ("json_config", "where"),
    [
        ({"padding_bonus": 9}, "params.json_config.padding_bonus = 9"),
        ({"temp": 2}, "params.json_config.temp = 2"),
        ({"cfg_coef": 0}, "params.json_config.cfg_coef = 0"),
        ({"temp": math.nan}, "params.json_config.temp = nan"),
        ({"temp": "hot"}, "params.json_config.temp must be a number"),
        ({"cfg_coef": True}, "params.json_config.cfg_coef must be a number"),
        ({"rewrite_rules": 5}, "params.json_config.rewrite_rules must be a string"),
        ({"rewrite_rules": "klingon"}, "params.json_config.rewrite_rules: 'klingon'"),
    ],
)
def test_the_same_settings_inside_json_config_are_checked_too(json_config, where):
    with pytest.raises(ConfigError) as info:
        make(json_config=json_config)
    assert where in str(info.value)


def test_non_finite_typed_values_are_out_of_range():
    for value in (math.inf, -math.inf, math.nan):
        with pytest.raises(ConfigError, match="params.speed = .* out of range"):
            make(speed=value)


# ---------------------------------------------------------- one source of truth
def test_typed_wins_over_json_config_and_every_other_key_passes_unchanged():
    config = make(
        speed=1.5,
        text_normalization="NumberEn",
        json_config={
            "padding_bonus": 3,
            "rewrite_rules": "fr",
            "temp": 0.9,  # not set as a typed param: json_config's value is used
            "max_padding": 8,  # undocumented keys pass through unchanged
            "padding_between": {"nested": [1, 2]},
            "x_future": "yes",
        },
    )
    assert config.setup_fields()["json_config"] == {
        "padding_bonus": -2.34,
        "rewrite_rules": "NumberEn",
        "temp": 0.9,
        "max_padding": 8,
        "padding_between": {"nested": [1, 2]},
        "x_future": "yes",
    }
    assert config.json_config_overridden() == [
        ("params.speed", "params.json_config.padding_bonus"),
        ("params.text_normalization", "params.json_config.rewrite_rules"),
    ]
    assert config.json_config == {  # the user's object itself is left alone
        "padding_bonus": 3,
        "rewrite_rules": "fr",
        "temp": 0.9,
        "max_padding": 8,
        "padding_between": {"nested": [1, 2]},
        "x_future": "yes",
    }


def test_a_json_config_value_a_typed_param_replaces_is_not_checked():
    # the typed property wins: the overridden json_config value is never sent
    config = make(speed=0.5, json_config={"padding_bonus": 99})
    assert config.setup_fields()["json_config"]["padding_bonus"] == 4.0


def test_json_config_alone_still_works_as_before():
    fields = sent(
        json_config='{"temp": 0.3, "padding_bonus": -1, "rewrite_rules": "de"}'
    )
    assert fields["json_config"] == {
        "temp": 0.3,
        "padding_bonus": -1,
        "rewrite_rules": "de",
    }
    assert make(json_config={"temp": 0.3}).json_config_overridden() == []


def test_the_config_log_shows_the_settings_used():
    config = make(
        speed=1.2,
        language="de-AT",
        json_config={"temp": 0.3, "auth": "secret-value-123"},
    )
    shown = json.loads(str(config))
    assert shown["voice_settings"] == {
        "padding_bonus": -1.052,
        "temp": 0.3,
        "rewrite_rules": "de",
    }
    assert shown["speed"] == 1.2 and shown["language"] == "de-AT"
    assert "secret-value-123" not in str(config)


# --------------------------------------------------- speed: TEN's multiplier
@pytest.mark.parametrize(
    ("speed", "padding_bonus"),
    [
        (0.5, 4.0),  # the slowest: Gradium's slowest
        (0.75, 1.66),
        (1.0, 0.0),  # normal: Gradium's default
        (1.2, -1.052),
        (1.5, -2.34),
        (2.0, -4.0),  # the fastest: Gradium's fastest
    ],
)
def test_speed_maps_onto_padding_bonus_by_minus_4_log2(speed, padding_bonus):
    assert speed_to_padding_bonus(speed) == padding_bonus
    exact = -4 * math.log2(speed)
    assert speed_to_padding_bonus(speed) == pytest.approx(exact, abs=1e-3)
    assert sent(speed=speed)["json_config"]["padding_bonus"] == padding_bonus


def test_speed_1_sends_a_plain_zero():
    # not -0.0: the wire carries Gradium's default exactly
    assert json.dumps(make(speed=1).setup_fields()["json_config"]) == (
        '{"padding_bonus": 0.0, "rewrite_rules": "en"}'
    )


def test_the_mapping_is_monotonic_bigger_is_faster():
    speeds = [0.5 + i / 100 for i in range(151)]  # 0.50 ... 2.00
    bonuses = [speed_to_padding_bonus(v) for v in speeds]
    assert all(a > b for a, b in zip(bonuses, bonuses[1:]))  # negative is faster
    assert (min(bonuses), max(bonuses)) == (-4.0, 4.0)  # all of Gradium's range


def test_json_config_padding_bonus_stays_the_exact_gradium_control():
    # passed on as it is, with Gradium's range and sign
    assert sent(json_config={"padding_bonus": -1.5})["json_config"] == {
        "padding_bonus": -1.5,
        "rewrite_rules": "en",
    }
    assert sent(json_config={"padding_bonus": 0})["json_config"]["padding_bonus"] == 0
    with pytest.raises(ConfigError) as info:
        make(json_config={"padding_bonus": -4.5})
    assert str(info.value) == (
        "params.json_config.padding_bonus = -4.5 is out of range: Gradium's "
        "padding_bonus takes -4.0 to 4.0 (negative is faster)"
    )


def test_typed_speed_wins_over_json_config_padding_bonus():
    config = make(speed=2.0, json_config={"padding_bonus": 3})
    assert config.setup_fields()["json_config"]["padding_bonus"] == -4.0
    assert config.json_config_overridden() == [
        ("params.speed", "params.json_config.padding_bonus")
    ]


# ------------------------------------------------------- language: the rules
@pytest.mark.parametrize(
    ("language", "rules"),
    [
        ("en", "en"),
        ("fr", "fr"),
        ("de", "de"),
        ("es", "es"),
        ("pt", "pt"),
        ("fr-FR", "fr"),  # BCP-47: the primary subtag decides
        ("pt-BR", "pt"),
        ("es-419", "es"),
        ("de-CH-1996", "de"),
        ("EN-us", "en"),  # case-insensitive
        ("FR", "fr"),
        ("pt_BR", "pt"),  # a POSIX locale's "_" too
        (" fr-CA ", "fr"),
    ],
)
def test_language_picks_the_rewrite_rules_alias(language, rules):
    assert sent(language=language)["json_config"] == {"rewrite_rules": rules}


def test_language_defaults_to_english():
    assert make().language == "en"
    assert sent()["json_config"] == {"rewrite_rules": "en"}


@pytest.mark.parametrize(
    "language",
    ["it", "zh-CN", "ja", "fra", "english", "French", "fr--FR", "f", "", "  ", "en-"],
)
def test_any_other_language_is_refused_naming_it_and_the_languages(language):
    with pytest.raises(ConfigError) as info:
        make(language=language)
    text = str(info.value)
    assert text.startswith(f"params.language = {language!r} is not supported: ")
    assert "en, fr, de, es, pt" in text and "fr-FR" in text
    assert "set it to the voice's language" in text


def test_a_language_of_the_wrong_type_is_refused():
    with pytest.raises(ConfigError, match=r"params.language: .*string"):
        make(language=5)


def test_a_secret_pasted_into_language_is_not_echoed():
    secret = "gsk_live_0123456789abcdef"
    with pytest.raises(ConfigError) as info:
        make(language=secret)
    assert secret not in str(info.value) and "0123456789" not in str(info.value)
    assert "params.language = the value given is not supported" in str(info.value)


@pytest.mark.parametrize(
    ("params", "rules"),
    [
        ({"language": "fr"}, "fr"),
        ({"language": "fr", "text_normalization": "NumberEn"}, "NumberEn"),
        ({"language": "fr", "json_config": {"rewrite_rules": "de"}}, "de"),
        (
            {
                "language": "fr",
                "text_normalization": "es",
                "json_config": {"rewrite_rules": "de"},
            },
            "es",
        ),
        ({"language": "fr", "text_normalization": ""}, None),  # off
        ({"language": "fr", "json_config": {"rewrite_rules": ""}}, None),
    ],
)
def test_text_normalization_and_json_config_win_over_language(params, rules):
    assert make(**params).voice_settings().get("rewrite_rules") == rules


def test_a_bad_language_is_refused_even_when_rules_are_given():
    with pytest.raises(ConfigError, match="params.language = 'it'"):
        make(language="it", text_normalization="fr")


def test_language_and_text_normalization_do_not_warn():
    # language only chooses a default: nothing to say when the rules are given
    config = make(language="fr", text_normalization="NumberEn")
    assert config.json_config_overridden() == []


def test_a_graph_from_another_ten_tts_node_needs_no_change():
    # cartesia, elevenlabs, minimax...: "speed": 1.2 (faster), "language": "fr-FR"
    fields = sent(speed=1.2, language="fr-FR")
    assert fields["json_config"] == {"padding_bonus": -1.052, "rewrite_rules": "fr"}
