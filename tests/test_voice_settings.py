"""Voice settings (issue 18): speed, temperature, voice_similarity and
text_normalization, typed params that reach Gradium inside the setup's
``json_config`` under Gradium's names (reference §2.1), range-checked against
Gradium's documented ranges, and winning over the same key in ``json_config``.

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

KEY = "gsk_live_0123456789abcdef"


def make(**params):
    return GradiumTTSConfig.from_properties({"params": {"api_key": KEY, **params}})


def sent(**params) -> dict:
    """The setup fields as they go on the wire (a JSON round trip included)."""
    return json.loads(json.dumps(make(**params).setup_fields()))


# ------------------------------------------------------------------ the wire
def test_typed_settings_go_inside_json_config_under_gradiums_names():
    fields = sent(
        speed=-1.5, temperature=0.4, voice_similarity=3, text_normalization="fr"
    )
    assert fields["json_config"] == {
        "padding_bonus": -1.5,
        "temp": 0.4,
        "cfg_coef": 3.0,
        "rewrite_rules": "fr",
    }
    # §2.1: there is no top-level speed (or padding_bonus...) in setup
    for key in ("speed", "temperature", "voice_similarity", "text_normalization"):
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
        "padding_bonus": 1.0
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
        ("speed", -4.01, "padding_bonus", "-4.0 to 4.0"),
        ("speed", 5, "padding_bonus", "-4.0 to 4.0"),
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


def test_the_speed_error_says_which_way_is_faster():
    with pytest.raises(ConfigError, match="negative is faster"):
        make(speed=-9)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("speed", -4),
        ("speed", 4.0),
        ("speed", 0),
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
        with pytest.raises(ConfigError, match="params.speed"):
            make(speed=value)


# ---------------------------------------------------------- one source of truth
def test_typed_wins_over_json_config_and_every_other_key_passes_unchanged():
    config = make(
        speed=-2,
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
        "padding_bonus": -2.0,
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
    config = make(speed=1, json_config={"padding_bonus": 99})
    assert config.setup_fields()["json_config"]["padding_bonus"] == 1.0


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
    config = make(speed=-1, json_config={"temp": 0.3, "auth": "secret-value-123"})
    shown = json.loads(str(config))
    assert shown["voice_settings"] == {
        "padding_bonus": -1.0,
        "temp": 0.3,
        "rewrite_rules": "en",
    }
    assert shown["speed"] == -1.0
    assert "secret-value-123" not in str(config)
