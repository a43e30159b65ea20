"""Configuration of the Gradium TTS extension: one pydantic model, no TEN import.

Properties arrive as the package ``property.json`` deep-merged with the graph node's
``property``. Known keys are lifted out of ``params`` into typed fields; whatever is
left in ``params`` is passed through to Gradium's ``setup`` message, but can never
override a key this extension owns (``RESERVED_SETUP_KEYS``).

Types are strict and match ``manifest.json`` ``api.property``: TEN refuses a value of
the wrong type before the extension runs (the process aborts with "Invalid
property."), so accepting ``"16000"`` for an int64 or ``"true"`` for a bool here
would only hide a graph that cannot run. An integer for a float64 is accepted, as
TEN adjusts it. ``json_config`` (object or JSON string) is the one undeclared param.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

DEFAULT_URL = "wss://api.gradium.ai/api/speech/tts"
DEFAULT_VOICE_ID = "YTpq7expH9539ERJ"  # Gradium's flagship English voice "Emma"
DEFAULT_MODEL = "default"
DEFAULT_SAMPLE_RATE = 24000
# What tts_flush does to Gradium: "close" the socket carrying the request (stops
# generation; the next request uses the standby), or "drop" its audio by id.
FLUSH_MODES = ("close", "drop")
SUPPORTED_SAMPLE_RATES = (8000, 16000, 22050, 24000, 44100, 48000)

# Keys of the setup message that this extension decides; a pass-through param
# with one of these names is ignored (and reported), never sent.
RESERVED_SETUP_KEYS = frozenset(
    {
        "type",
        "model_name",
        "voice_id",
        "voice",
        "output_format",
        "json_config",
        "pronunciation_id",
        "client_req_id",
        "close_ws_on_eos",
        "retry_for_s",
    }
)
# Keys of ``params`` that configure the extension itself and never go on the wire.
CLIENT_PARAM_KEYS = frozenset(
    {
        "api_key",
        "url",
        "base_url",
        "sample_rate",
        "connect_timeout_s",
        "response_timeout_s",
        "max_socket_age_s",
        "max_requests_per_socket",
        "flush_mode",
        "dump",
        "dump_path",
        "enable_words",
        "text_filter",
    }
)


# --------------------------------------------------------------- voice settings
# Typed params for Gradium's model settings (reference §2.1). On the wire they go
# inside the setup's ``json_config`` under Gradium's own names; a typed param wins
# over the same key written in ``json_config`` (one warning names both).
# typed param -> (json_config key, lowest, highest): Gradium's documented ranges of
# the json_config key. ``speed`` is not Gradium's value itself: see SPEED_RANGE.
VOICE_SETTINGS: dict[str, tuple[str, float, float]] = {
    "speed": ("padding_bonus", -4.0, 4.0),  # negative = faster
    "temperature": ("temp", 0.0, 1.4),
    "voice_similarity": ("cfg_coef", 1.0, 4.0),
}
VOICE_KEYS = frozenset(key for key, _, _ in VOICE_SETTINGS.values())
# params.speed is a rate multiplier, as in TEN's other TTS nodes: 1.0 normal,
# bigger faster. speed_to_padding_bonus maps this range onto padding_bonus's.
SPEED_RANGE = (0.5, 2.0)
NORMALIZATION_KEY = "rewrite_rules"  # json_config key of params.text_normalization
# Gradium's languages; params.language picks the rewrite_rules alias of one.
LANGUAGES = ("en", "fr", "de", "es", "pt")
# Gradium recommends rewrite rules for numbers, dates, times, e-mails, URLs and
# phone numbers (spoken wrong without them); the default voice is English.
DEFAULT_LANGUAGE = "en"
NORMALIZATION_ALIASES = LANGUAGES
# The rule names Gradium documents (docs/rewriting_rules.md); other CamelCase names
# are passed on with a warning, as Gradium may add rules.
NORMALIZATION_RULES = frozenset(
    {"Date", "AlNum", "TimeEn", "TimeFr", "TimeDe"}
    | {
        f"{kind}{lang}"
        for kind in ("Number", "Email", "Url", "Phone")
        for lang in ("En", "Fr", "De", "Es", "Pt")
    }
)
# A BCP-47 tag (fr, fr-FR, pt-BR, zh-Hant-TW; "_" accepted as in fr_FR): the
# primary subtag decides.
_LANGUAGE_TAG = re.compile(r"([A-Za-z]{2,3})(?:[-_][A-Za-z0-9]{1,8}){0,3}")


def speed_to_padding_bonus(speed: float) -> float:
    """Gradium's ``padding_bonus`` for a TEN speed multiplier: ``-4 * log2(speed)``.

    1.0 -> 0.0 (normal), 2.0 -> -4.0 (fastest), 0.5 -> 4.0 (slowest); monotonic,
    bigger speed gives a smaller (faster) padding_bonus. An approximation: Gradium
    documents no exact rate for padding_bonus (about +-30 % duration at +-2).
    Rounded to 3 decimals (and never -0.0).
    """
    return round(-4.0 * math.log2(speed), 3) + 0.0


def language_code(value: str) -> str:
    """The Gradium language (en, fr, de, es, pt) of ``value``: an alias or a
    BCP-47 tag whose primary subtag is one (case-insensitive). Raises ConfigError
    naming the value (only a short, plain one: never a key pasted by mistake) and
    the languages."""
    match = _LANGUAGE_TAG.fullmatch(value.strip())
    code = match.group(1).lower() if match else ""
    if code in LANGUAGES:
        return code
    short = len(value) <= 20 and re.fullmatch(r"[A-Za-z0-9 _-]*", value)
    shown = f"{value!r}" if short else "the value given"  # never a pasted key
    raise ConfigError(
        f"params.language = {shown} is not supported: Gradium speaks "
        f"{', '.join(LANGUAGES)} (a BCP-47 tag such as fr-FR or pt-BR works too); "
        "set it to the voice's language"
    )


_RULE_NAME = re.compile(r"[A-Z][A-Za-z]{0,23}")  # like NumberEn


def normalize_rewrite_rules(value: str, where: str) -> str:
    """``value`` as Gradium's comma list (spaces removed); ``""`` = off.

    Raises ConfigError for an unknown language alias or an item that is no rule
    name. The message quotes an item only when it looks like a name (never a
    secret pasted in by mistake).
    """
    items = [item.strip() for item in value.split(",")]
    items = [item for item in items if item]
    for item in items:
        if item in NORMALIZATION_ALIASES or _RULE_NAME.fullmatch(item):
            continue
        shown = (
            f"{item!r}"
            if re.fullmatch(r"[A-Za-z]{1,12}", item)
            else f"an item of {len(item)} characters"
        )
        raise ConfigError(
            f"{where}: {shown} is neither a language alias "
            f"({', '.join(NORMALIZATION_ALIASES)}) nor a rule name such as NumberEn, "
            'UrlEn, EmailEn, TimeEn, Date; "" turns text normalization off'
        )
    return ",".join(items)


def unknown_rewrite_rules(rules: str) -> list[str]:
    """Rule names in ``rules`` that Gradium does not document (passed on as is)."""
    return [
        item
        for item in rules.split(",")
        if item
        and item not in NORMALIZATION_ALIASES
        and item not in NORMALIZATION_RULES
    ]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _checked_speed(speed: float) -> float:
    """``speed`` if it is inside SPEED_RANGE, else ConfigError naming it."""
    low, high = SPEED_RANGE
    if math.isfinite(speed) and low <= speed <= high:
        return speed
    if math.isfinite(speed) and speed <= 0:  # the old meaning: Gradium's padding_bonus
        raise ConfigError(
            f"params.speed = {speed} is refused: speed is now a multiplier, "
            f"{low} to {high}, 1.0 normal, bigger is faster (it used to be "
            "Gradium's padding_bonus, 0 normal, negative faster: set "
            "params.json_config.padding_bonus for that)"
        )
    raise ConfigError(
        f"params.speed = {speed} is out of range: it takes {low} to {high} "
        "(1.0 normal, bigger is faster)"
    )


class ConfigError(ValueError):
    """The configuration cannot work: reported as a FATAL error (-1000)."""


def _mask(secret: str) -> str:
    if not secret:
        return "<empty>"
    if len(secret) <= 8:
        return "****"
    return f"{secret[:4]}...{secret[-2:]}"


def redact_url(url: str) -> str:
    """A URL for logs and error messages: ``scheme://host[:port]/path`` only.

    User info (``user:key@``) becomes ``***@``, every query value becomes ``***``
    (whatever its name: a key may hide under any of them) and a query item without
    ``=`` is masked whole; the fragment is dropped. Text that is not a URL with a
    scheme and a host is not echoed at all.
    """
    try:
        parts = urlsplit(url.strip())
    except (ValueError, AttributeError):
        return "<invalid url>"
    if not parts.scheme or not parts.netloc:
        return "<not a URL>"
    _, at, host = parts.netloc.rpartition("@")
    shown = f"{parts.scheme}://{'***@' if at else ''}{host}{parts.path}"
    if parts.query:
        items = [
            f"{item.partition('=')[0]}=***" if "=" in item else "***"
            for item in parts.query.split("&")
            if item
        ]
        shown += "?" + "&".join(items)
    return shown


def _mask_values(value: Any) -> Any:
    """Free-form settings for logs: keys and numbers kept, every string masked."""
    if isinstance(value, dict):
        return {k: _mask_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_values(v) for v in value]
    if isinstance(value, str):
        return "***" if value else ""
    return value


class GradiumTTSConfig(BaseModel):
    """Typed view of the extension properties."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    # Top-level properties (TEN's tts-interface conventions).
    dump: StrictBool = False
    dump_path: StrictStr = "/tmp"
    enable_words: StrictBool = False

    # Lifted out of ``params``. Strict types: what manifest.json declares.
    api_key: SecretStr = SecretStr("")  # a str only (SecretStr takes no number)
    url: StrictStr = DEFAULT_URL
    model_name: StrictStr = DEFAULT_MODEL
    voice_id: StrictStr = DEFAULT_VOICE_ID
    voice: StrictStr = ""
    sample_rate: StrictInt = DEFAULT_SAMPLE_RATE
    json_config: dict[str, Any] | None = None
    pronunciation_id: StrictStr = ""
    retry_for_s: StrictFloat | None = None  # StrictFloat takes an int, as TEN does
    connect_timeout_s: StrictFloat = 10.0
    response_timeout_s: StrictFloat = 5.0
    max_socket_age_s: StrictFloat = 240.0
    # Requests multiplexed on one socket at most: a guess, Gradium publishes no
    # per-socket cap (gradium_tts.MAX_REQUESTS_PER_SOCKET).
    max_requests_per_socket: StrictInt = 16
    flush_mode: StrictStr = "close"
    text_filter: StrictBool = True  # strip markdown and emoji before Gradium

    # Voice settings (VOICE_SETTINGS, NORMALIZATION_KEY). None: not set here, so
    # json_config's value (or Gradium's default) applies; see voice_settings().
    speed: StrictFloat | None = None
    temperature: StrictFloat | None = None
    voice_similarity: StrictFloat | None = None
    text_normalization: StrictStr | None = None  # "" = off
    # The voice's language: the default rewrite_rules alias (see voice_settings).
    language: StrictStr = DEFAULT_LANGUAGE

    # Pass-through setup keys, and what was dropped (for a warning at start).
    extra_setup: dict[str, Any] = Field(default_factory=dict)
    ignored_params: list[str] = Field(default_factory=list)

    # ---------------------------------------------------------------- building
    @classmethod
    def from_properties(cls, props: dict[str, Any]) -> GradiumTTSConfig:
        """Build and validate from the extension's whole property object.

        Raises ConfigError with a message that says what to fix.
        """
        if not isinstance(props, dict):
            raise ConfigError("extension properties must be a JSON object")
        params = props.get("params", {})
        if params is None:
            params = {}
        if not isinstance(params, dict):
            raise ConfigError("'params' must be a JSON object")
        params = dict(params)

        fields: dict[str, Any] = {}
        for key in ("dump", "dump_path", "enable_words"):
            if key in params:  # also declared (and checked by TEN) inside params
                fields[key] = _typed(f"params.{key}", params[key], cls, key)
            if key in props:
                fields[key] = props[key]

        url = params.pop("url", None)
        base_url = params.pop("base_url", None)
        if base_url is not None:
            _typed("params.base_url", base_url, cls, "url")
        if url in (None, "") and base_url:
            url = base_url  # older graphs used base_url; accepted as an alias
        if url not in (None, ""):
            fields["url"] = url
        api_key = params.pop("api_key", "")
        fields["api_key"] = "" if api_key is None else api_key

        for key in (
            "model_name",
            "voice_id",
            "voice",
            "sample_rate",
            "json_config",
            "pronunciation_id",
            "retry_for_s",
            "connect_timeout_s",
            "response_timeout_s",
            "max_socket_age_s",
            "max_requests_per_socket",
            "flush_mode",
            "text_filter",
            # voice settings (issue 18)
            "speed",
            "temperature",
            "voice_similarity",
            "text_normalization",
            "language",  # issue 23
        ):
            if key in params:
                value = params.pop(key)
                if value is not None:
                    fields[key] = value

        ignored: list[str] = []
        extra: dict[str, Any] = {}
        for key, value in params.items():
            if key in CLIENT_PARAM_KEYS:
                continue
            if key in RESERVED_SETUP_KEYS:
                ignored.append(key)
                continue
            if value is not None:
                extra[key] = value
        fields["extra_setup"] = extra
        fields["ignored_params"] = ignored

        if "json_config" in fields:
            fields["json_config"] = _parse_json_config(fields["json_config"])

        try:
            config = cls(**fields)
        except Exception as exc:  # pydantic ValidationError: make it readable
            raise ConfigError(_first_validation_problem(exc)) from None
        config.validate_values()
        return config

    def validate_values(self) -> None:
        if not self.api_key.get_secret_value().strip():
            raise ConfigError(
                "params.api_key is empty: set GRADIUM_API_KEY or params.api_key"
            )
        scheme = urlsplit(self.url).scheme
        if scheme not in ("ws", "wss"):
            raise ConfigError(
                f"params.url must be a ws:// or wss:// URL, got {redact_url(self.url)!r}"
            )
        if self.sample_rate not in SUPPORTED_SAMPLE_RATES:
            raise ConfigError(
                f"params.sample_rate {self.sample_rate} is not supported; use one of "
                + ", ".join(str(r) for r in SUPPORTED_SAMPLE_RATES)
            )
        if not self.voice_id.strip() and not self.voice.strip():
            raise ConfigError("params.voice_id (or params.voice) must not be empty")
        if not self.model_name.strip():
            raise ConfigError("params.model_name must not be empty")
        if self.retry_for_s is not None and (
            not math.isfinite(self.retry_for_s) or self.retry_for_s < 0
        ):
            raise ConfigError("params.retry_for_s must be a number >= 0")
        if self.flush_mode not in FLUSH_MODES:
            raise ConfigError(
                f"params.flush_mode must be one of {', '.join(FLUSH_MODES)}, "
                f"got {self.flush_mode!r}"
            )
        for name in ("connect_timeout_s", "response_timeout_s", "max_socket_age_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"params.{name} must be a number > 0")
        if self.max_requests_per_socket < 1:
            raise ConfigError("params.max_requests_per_socket must be an integer >= 1")
        self.voice_settings()  # raises ConfigError: a setting out of Gradium's range

    # ---------------------------------------------------------- voice settings
    def voice_settings(self) -> dict[str, Any]:
        """The effective voice settings, under Gradium's json_config names.

        A typed param wins over the same key in ``json_config``; a key set in
        neither is left out (Gradium's default), except ``rewrite_rules``, which
        defaults to the alias of ``language``; an empty value turns it off (left
        out). ``speed`` is a multiplier, sent as speed_to_padding_bonus(speed).
        Raises ConfigError for a value outside its range.
        """
        given = self.json_config or {}
        out: dict[str, Any] = {}
        for name, (key, low, high) in VOICE_SETTINGS.items():
            value = getattr(self, name)
            if name == "speed" and value is not None:
                out[key] = speed_to_padding_bonus(_checked_speed(value))
                continue
            where = f"params.{name}"
            if value is None and key in given:
                value, where = given[key], f"params.json_config.{key}"
            if value is None:
                continue
            if not _number(value):
                raise ConfigError(
                    f"{where} must be a number from {low} to {high}, "
                    f"got {_json_type(value)}"
                )
            if not (math.isfinite(value) and low <= value <= high):
                hint = " (negative is faster)" if key == "padding_bonus" else ""
                raise ConfigError(
                    f"{where} = {value} is out of range: Gradium's {key} takes "
                    f"{low} to {high}{hint}"
                )
            out[key] = value
        language = language_code(self.language)
        rules: Any = self.text_normalization
        where = "params.text_normalization"
        if rules is None and NORMALIZATION_KEY in given:
            rules = given[NORMALIZATION_KEY]
            where = f"params.json_config.{NORMALIZATION_KEY}"
        if rules is None:
            rules = language
        if not isinstance(rules, str):
            raise ConfigError(f"{where} must be a string, got {_json_type(rules)}")
        rules = normalize_rewrite_rules(rules, where)
        if rules:
            out[NORMALIZATION_KEY] = rules
        return out

    def json_config_overridden(self) -> list[tuple[str, str]]:
        """(typed param, json_config key) pairs set in both: the typed one wins."""
        given = self.json_config or {}
        pairs = [(name, key) for name, (key, _, _) in VOICE_SETTINGS.items()]
        pairs.append(("text_normalization", NORMALIZATION_KEY))
        return [
            (f"params.{name}", f"params.json_config.{key}")
            for name, key in pairs
            if getattr(self, name) is not None and key in given
        ]

    def effective_json_config(self) -> dict[str, Any] | None:
        """``json_config`` as sent: every key passed on unchanged, except the
        voice settings, which voice_settings() decides."""
        out = {
            k: v
            for k, v in (self.json_config or {}).items()
            if k != NORMALIZATION_KEY and k not in VOICE_KEYS
        }
        out.update(self.voice_settings())
        return out or None

    # ---------------------------------------------------------------- derived
    @property
    def output_format(self) -> str:
        return f"pcm_{self.sample_rate}"

    def setup_fields(self) -> dict[str, Any]:
        """The request-independent part of Gradium's ``setup`` message."""
        fields: dict[str, Any] = dict(self.extra_setup)
        fields["model_name"] = self.model_name
        if self.voice_id.strip():
            fields["voice_id"] = self.voice_id
        else:
            fields["voice"] = self.voice
        fields["output_format"] = self.output_format
        json_config = self.effective_json_config()
        if json_config is not None:
            fields["json_config"] = json_config
        if self.pronunciation_id:
            fields["pronunciation_id"] = self.pronunciation_id
        if self.retry_for_s is not None:
            fields["retry_for_s"] = self.retry_for_s
        return fields

    # ---------------------------------------------------------------- printing
    def safe_dict(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"api_key"})
        data["api_key"] = _mask(self.api_key.get_secret_value())
        data["url"] = redact_url(self.url)
        # json_config and pass-through params are free-form: a key may hide there.
        data["json_config"] = _mask_values(self.json_config)
        data["extra_setup"] = _mask_values(self.extra_setup)
        data["output_format"] = self.output_format
        # Validated: numbers in range and rule names only, nothing secret.
        data["voice_settings"] = self.voice_settings()
        return data

    def __str__(self) -> str:
        return json.dumps(self.safe_dict(), sort_keys=True, default=str)

    __repr__ = __str__


def _parse_json_config(value: Any) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"params.json_config is not valid JSON ({exc.msg} at char {exc.pos})"
            ) from None
        if not isinstance(parsed, dict):
            raise ConfigError("params.json_config must be a JSON object")
        return parsed
    raise ConfigError("params.json_config must be an object or a JSON string")


_JSON_TYPE = {bool: "a bool", int: "an integer", float: "a float", str: "a string"}


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return _JSON_TYPE.get(type(value), type(value).__name__)


def _typed(where: str, value: Any, cls: type[BaseModel], field: str) -> Any:
    """Check ``value`` against ``field``'s strict type; ConfigError names ``where``."""
    try:
        cls.model_validate({field: value})  # the field's own (strict) type
    except ValidationError as exc:
        raise ConfigError(_describe(where, exc.errors()[0], value)) from None
    return value


def _describe(where: str, error: dict, value: Any) -> str:
    text = f"{where}: {error.get('msg', 'invalid value')}, got {_json_type(value)}"
    scalar = isinstance(value, (str, int, float, bool))
    if scalar and error.get("type", "").endswith("_type") and "api_key" not in where:
        text += f" ({json.dumps(value)[:60]})"  # e.g. "16000" for an int64
    return text


def _first_validation_problem(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            first = errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            where = (
                where
                if where in ("dump", "dump_path", "enable_words")
                else (f"params.{where}")
            )
            return _describe(where, first, first.get("input"))
        except (IndexError, KeyError, TypeError):
            pass
    return "invalid configuration"
