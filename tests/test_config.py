"""config.py: the typed view of the properties, its errors, and secret redaction."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from harness import ext_module

DEFAULT_URL = ext_module("config").DEFAULT_URL
ConfigError = ext_module("config").ConfigError
GradiumTTSConfig = ext_module("config").GradiumTTSConfig
redact_url = ext_module("config").redact_url

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
    assert as_string.setup_fields()["json_config"] == {
        "temp": 0.3,
        "padding_bonus": -1,
        "rewrite_rules": "en",  # the default text normalization
    }
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
        "json_config": {"rewrite_rules": "en"},  # the default text normalization
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
    fields = make(
        connect_timeout_s=3, response_timeout_s=4, max_socket_age_s=100
    ).setup_fields()
    assert not {"connect_timeout_s", "response_timeout_s", "max_socket_age_s"} & set(
        fields
    )


@pytest.mark.parametrize("name", ["retry_for_s", "connect_timeout_s"])
def test_negative_numbers_are_rejected(name):
    with pytest.raises(ConfigError, match=name):
        make(**{name: -1})


def test_top_level_dump_settings():
    config = GradiumTTSConfig.from_properties(
        {
            "dump": True,
            "dump_path": "/tmp/x",
            "enable_words": True,
            "params": {"api_key": KEY},
        }
    )
    assert (config.dump, config.dump_path, config.enable_words) == (
        True,
        "/tmp/x",
        True,
    )


def test_secret_never_appears_in_string_forms():
    config = make(url=f"wss://example.test/api/speech/tts?token={KEY}")
    for text in (str(config), repr(config), json.dumps(config.safe_dict())):
        assert KEY not in text
        assert "gsk_...ef" in text


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "wss://h/api/speech/tts?token=abcdefghijkl&x=1",
            "wss://h/api/speech/tts?token=***&x=***",
        ),
        ("wss://h/api/speech/tts", "wss://h/api/speech/tts"),
        (
            "ws://u:abcdefghijkl@h:81/p?x-api-key=abcdefghijkl#abcdefghijkl",
            "ws://***@h:81/p?x-api-key=***",
        ),
        ("ws://abcdefghijkl@h/p?abcdefghijkl", "ws://***@h/p?***"),
        ("http://u:abcdefghijkl@h/p", "http://***@h/p"),
        ("abcdefghijkl", "<not a URL>"),
    ],
)
def test_redact_url_shows_scheme_host_path_only(url, shown):
    assert redact_url(url) == shown


# --------------------------------------------- config.py and manifest.json agree

MANIFEST_PROPS = json.loads((ROOT / "manifest.json").read_text())["api"]["property"][
    "properties"
]


def _declared() -> list[tuple[str, str]]:
    """(where, TEN type) of every property the manifest declares, params included."""
    out = []
    for key, spec in MANIFEST_PROPS.items():
        if key == "params":
            out += [(f"params.{k}", s["type"]) for k, s in spec["properties"].items()]
        else:
            out.append((key, spec["type"]))
    return out


DECLARED = _declared()

# What TEN's schema check lets through for each declared type (contract §1.7:
# "adjusted and validated"; a string or 3.7 for int64 aborts, verified). Reading
# taken for float64: an integer is adjusted to a float, so it passes.
WRONG = {
    "string": [1, 2.5, True, {"a": 1}, ["x"]],
    "int64": ["16000", 3.7, 16000.0, True, {"a": 1}],
    "bool": ["true", 1, 0, "false", {"a": 1}],
    "float64": ["1.5", True, {"a": 1}, ["1"]],
}
RIGHT = {"string": ["x"], "int64": [1], "bool": [True, False], "float64": [2.5, 3]}
# Right-typed values that config.py's own value checks also accept.
RIGHT_FOR = {
    "params.url": ["ws://127.0.0.1:9/api/speech/tts"],
    "params.base_url": ["ws://127.0.0.1:9/api/speech/tts"],
    "params.sample_rate": [16000, 48000],
    "params.flush_mode": ["close", "drop"],
    # voice settings: right-typed and inside Gradium's ranges
    "params.speed": [0.75, 2],  # a multiplier, 0.5 to 2.0 (issue 23)
    "params.temperature": [0.5, 1],
    "params.voice_similarity": [2.5, 3],
    "params.text_normalization": ["en"],
    "params.language": ["fr-FR"],
}


def ten_accepts(ten_type: str, value) -> bool:
    if isinstance(value, bool):
        return ten_type == "bool"
    if ten_type == "string":
        return isinstance(value, str)
    if ten_type == "int64":
        return isinstance(value, int)
    if ten_type == "float64":
        return isinstance(value, (int, float))
    return ten_type == "bool" and isinstance(value, bool)


def _props_with(where: str, value) -> dict:
    props = {"params": {"api_key": KEY}}
    if where.startswith("params."):
        props["params"][where[len("params.") :]] = value
    else:
        props[where] = value
    return props


def test_every_declared_type_is_one_config_py_checks():
    assert {t for _, t in DECLARED} <= set(WRONG)
    assert len(DECLARED) >= 15
    assert "json_config" not in MANIFEST_PROPS["params"]["properties"]


@pytest.mark.parametrize("where,ten_type", DECLARED)
def test_a_wrong_typed_value_is_refused_by_config_py_as_by_ten(where, ten_type):
    for value in WRONG[ten_type]:
        assert not ten_accepts(ten_type, value)
        with pytest.raises(ConfigError, match=re.escape(where) + ": "):
            GradiumTTSConfig.from_properties(_props_with(where, value))


@pytest.mark.parametrize("where,ten_type", DECLARED)
def test_a_right_typed_value_is_accepted_by_config_py_as_by_ten(where, ten_type):
    for value in RIGHT_FOR.get(where, RIGHT[ten_type]):
        assert ten_accepts(ten_type, value)
        config = GradiumTTSConfig.from_properties(_props_with(where, value))
        field = {"params.base_url": "url"}.get(where, where.split(".")[-1])
        got = getattr(config, field)
        if field == "api_key":
            got = got.get_secret_value()
        assert got == value and type(got) is type(
            float(value) if ten_type == "float64" else value
        )


def test_the_standin_schema_check_draws_the_same_line():
    """The stand-in runtime refuses exactly the values config.py refuses."""
    import tenhost

    if not tenhost.is_standin():
        pytest.skip("the real runtime aborts the process on these values")
    from ten_runtime import _schema

    for ten_type in WRONG:
        for value in WRONG[ten_type]:
            with pytest.raises(_schema.SchemaError):
                _schema.adjust(value, {"type": ten_type}, ".x")
        for value in RIGHT[ten_type]:
            _schema.adjust(value, {"type": ten_type}, ".x")


def test_sample_rate_as_a_string_names_the_value():
    with pytest.raises(
        ConfigError,
        match=r'params\.sample_rate: Input should be a valid integer, got a string \("16000"\)',
    ):
        make(sample_rate="16000")


def test_a_wrong_typed_key_is_refused_without_printing_it():
    with pytest.raises(ConfigError) as info:
        GradiumTTSConfig.from_properties({"params": {"api_key": 123456789}})
    assert "params.api_key" in str(info.value) and "123456789" not in str(info.value)


def test_max_requests_per_socket_default_param_and_range():
    assert make().max_requests_per_socket == 16  # a guess: Gradium publishes none
    config = make(max_requests_per_socket=4)
    assert config.max_requests_per_socket == 4
    assert "max_requests_per_socket" not in config.setup_fields()  # not on the wire
    for bad in (0, -3):
        with pytest.raises(ConfigError, match="max_requests_per_socket"):
            make(max_requests_per_socket=bad)
    with pytest.raises(ConfigError):
        make(max_requests_per_socket=2.5)  # an integer, as the manifest says
