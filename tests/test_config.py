"""config.py: the typed view of the properties, its errors, and secret redaction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gradium_tts_python.config import (
    DEFAULT_URL,
    ConfigError,
    GradiumTTSConfig,
    redact_url,
)

ROOT = Path(__file__).resolve().parents[1]
KEY = "gsk_live_0123456789abcdef"


def make(**params):
    return GradiumTTSConfig.from_properties({"params": {"api_key": KEY, **params}})


def test_defaults_match_property_json():
    props = json.loads((ROOT / "property.json").read_text())
    props["params"]["api_key"] = KEY  # the placeholder resolves to "" when unset
    config = GradiumTTSConfig.from_properties(props)
    assert config.url == DEFAULT_URL
    assert config.sample_rate == 24000
    assert config.output_format == "pcm_24000"
    assert config.dump is False and config.enable_words is False


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 44100, 48000])
def test_output_format_is_derived_from_sample_rate(rate):
    config = make(sample_rate=rate)
    assert config.setup_fields()["output_format"] == f"pcm_{rate}"


@pytest.mark.parametrize("rate", [11025, 0, -16000, 96000])
def test_unsupported_sample_rate_is_a_clear_error(rate):
    with pytest.raises(ConfigError, match=r"sample_rate .* not supported.*16000"):
        make(sample_rate=rate)


def test_sample_rate_of_wrong_type_is_a_clear_error():
    with pytest.raises(ConfigError, match="params.sample_rate"):
        make(sample_rate="fast")


@pytest.mark.parametrize("key", ["", "   ", None])
def test_missing_key_is_an_error_naming_the_variable(key):
    with pytest.raises(ConfigError, match="GRADIUM_API_KEY"):
        GradiumTTSConfig.from_properties({"params": {"api_key": key}})


def test_no_params_at_all_is_an_error():
    with pytest.raises(ConfigError, match="api_key"):
        GradiumTTSConfig.from_properties({})


def test_url_must_be_a_websocket_url():
    with pytest.raises(ConfigError, match="ws:// or wss://"):
        make(url="https://api.gradium.ai/api/speech/tts")


def test_base_url_is_accepted_as_an_alias_and_never_sent():
    config = make(base_url="ws://127.0.0.1:9/api/speech/tts")
    assert config.url == "ws://127.0.0.1:9/api/speech/tts"
    assert "base_url" not in config.setup_fields()


def test_json_config_as_string_or_object_goes_out_as_object():
    as_string = make(json_config='{"temp": 0.3, "padding_bonus": -1}')
    as_object = make(json_config={"temp": 0.3, "padding_bonus": -1})
    assert as_string.setup_fields()["json_config"] == {"temp": 0.3, "padding_bonus": -1}
    assert as_object.setup_fields() == as_string.setup_fields()


@pytest.mark.parametrize("bad", ["{not json", "[1, 2]", 42])
def test_invalid_json_config_is_a_clear_error(bad):
    with pytest.raises(ConfigError, match="json_config"):
        make(json_config=bad)


def test_setup_fields_carry_the_documented_keys():
    config = make(
        model_name="m1",
        voice_id="v1",
        pronunciation_id="p1",
        retry_for_s=30,
    )
    assert config.setup_fields() == {
        "model_name": "m1",
        "voice_id": "v1",
        "output_format": "pcm_24000",
        "pronunciation_id": "p1",
        "retry_for_s": 30.0,
    }


def test_voice_is_used_only_without_voice_id():
    fields = make(voice_id="", voice="emma").setup_fields()
    assert fields["voice"] == "emma" and "voice_id" not in fields
    fields = make(voice_id="v1", voice="emma").setup_fields()
    assert fields["voice_id"] == "v1" and "voice" not in fields


def test_neither_voice_nor_voice_id_is_an_error():
    with pytest.raises(ConfigError, match="voice"):
        make(voice_id="", voice="")


def test_extra_params_pass_through_but_never_override_reserved_keys():
    config = make(
        output_format="wav",
        close_ws_on_eos=True,
        client_req_id="x",
        type="text",
        custom_flag=7,
        skipped=None,
    )
    fields = config.setup_fields()
    assert fields["output_format"] == "pcm_24000"
    assert fields["custom_flag"] == 7
    for key in ("close_ws_on_eos", "client_req_id", "type", "skipped"):
        assert key not in fields
    assert sorted(config.ignored_params) == [
        "client_req_id",
        "close_ws_on_eos",
        "output_format",
        "type",
    ]


def test_client_settings_never_reach_the_wire():
    fields = make(connect_timeout_s=3, response_timeout_s=4, max_socket_age_s=100).setup_fields()
    assert not {"connect_timeout_s", "response_timeout_s", "max_socket_age_s"} & set(fields)


@pytest.mark.parametrize("name", ["retry_for_s", "connect_timeout_s"])
def test_negative_numbers_are_rejected(name):
    with pytest.raises(ConfigError, match=name):
        make(**{name: -1})


def test_top_level_dump_settings():
    config = GradiumTTSConfig.from_properties(
        {"dump": True, "dump_path": "/tmp/x", "enable_words": True, "params": {"api_key": KEY}}
    )
    assert (config.dump, config.dump_path, config.enable_words) == (True, "/tmp/x", True)


def test_secret_never_appears_in_string_forms():
    config = make(url=f"wss://example.test/api/speech/tts?token={KEY}")
    for text in (str(config), repr(config), json.dumps(config.safe_dict())):
        assert KEY not in text
        assert "gsk_...ef" in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("wss://h/api/speech/tts?token=abcdefghijkl&x=1", "wss://h/api/speech/tts?token=***&x=***"),
        ("wss://h/api/speech/tts", "wss://h/api/speech/tts"),
        ("ws://u:abcdefghijkl@h:81/p?x-api-key=abcdefghijkl#abcdefghijkl", "ws://***@h:81/p?x-api-key=***"),
        ("ws://abcdefghijkl@h/p?abcdefghijkl", "ws://***@h/p?***"),
        ("http://u:abcdefghijkl@h/p", "http://***@h/p"),
        ("abcdefghijkl", "<not a URL>"),
    ],
)
def test_redact_url_shows_scheme_host_path_only(url, shown):
    assert redact_url(url) == shown


def test_connection_key_changes_only_with_socket_settings():
    a = make(voice_id="v1")
    assert a.connection_key() == make(voice_id="v2").connection_key()
    assert a.connection_key() != make(sample_rate=16000).connection_key()
    assert a.connection_key() != make(url="ws://127.0.0.1:1/api/speech/tts").connection_key()
