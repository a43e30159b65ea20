"""Configuration of the Gradium TTS extension: one pydantic model, no TEN import.

Properties arrive as the package ``property.json`` deep-merged with the graph node's
``property``. Known keys are lifted out of ``params`` into typed fields; whatever is
left in ``params`` is passed through to Gradium's ``setup`` message, but can never
override a key this extension owns (``RESERVED_SETUP_KEYS``).
"""

from __future__ import annotations

import json
import math
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

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
        "flush_mode",
        "dump",
        "dump_path",
        "enable_words",
    }
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
    """Mask a ``token`` query parameter (browser-style auth) in a URL for logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    if not parts.query:
        return url
    query = [
        (k, _mask(v) if k.lower() in ("token", "api_key", "key") else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(query, safe="*.<>")))


class GradiumTTSConfig(BaseModel):
    """Typed view of the extension properties."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    # Top-level properties (TEN's tts-interface conventions).
    dump: bool = False
    dump_path: str = "/tmp"
    enable_words: bool = False

    # Lifted out of ``params``.
    api_key: SecretStr = SecretStr("")
    url: str = DEFAULT_URL
    model_name: str = DEFAULT_MODEL
    voice_id: str = DEFAULT_VOICE_ID
    voice: str = ""
    sample_rate: int = DEFAULT_SAMPLE_RATE
    json_config: dict[str, Any] | None = None
    pronunciation_id: str = ""
    retry_for_s: float | None = None
    connect_timeout_s: float = 10.0
    response_timeout_s: float = 5.0
    max_socket_age_s: float = 240.0
    flush_mode: str = "close"

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
            if key in props:
                fields[key] = props[key]
            elif key in params:
                fields[key] = params[key]

        url = params.pop("url", None)
        base_url = params.pop("base_url", None)
        if not url and base_url:
            url = base_url  # older graphs used base_url; accepted as an alias
        if url:
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
            "flush_mode",
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
        if self.json_config is not None:
            fields["json_config"] = self.json_config
        if self.pronunciation_id:
            fields["pronunciation_id"] = self.pronunciation_id
        if self.retry_for_s is not None:
            fields["retry_for_s"] = self.retry_for_s
        return fields

    def connection_key(self) -> tuple[Any, ...]:
        """What a socket depends on: a change means a new socket."""
        return (self.url, self.api_key.get_secret_value(), self.sample_rate)

    # ---------------------------------------------------------------- printing
    def safe_dict(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"api_key"})
        data["api_key"] = _mask(self.api_key.get_secret_value())
        data["url"] = redact_url(self.url)
        data["output_format"] = self.output_format
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
            return f"{where}: {first.get('msg', 'invalid value')}"
        except (IndexError, KeyError, TypeError):
            pass
    return "invalid configuration"
