"""manifest.json ``api`` schemas: loading and validation (contract §1.7).

Rules reproduced from the real runtime:
- only properties that are present AND declared are checked; extra ones pass;
- ``required`` is enforced only inside a schema object (e.g. array items), never
  the message-level lists that sit beside ``property`` in tts-interface.json;
- values are adjusted where TEN adjusts them (an integer for a float property
  becomes a float); anything else of the wrong type is refused.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ._props import type_name

_INT_RANGES = {
    "int8": (-(2**7), 2**7 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint8": (0, 2**8 - 1),
    "uint16": (0, 2**16 - 1),
    "uint32": (0, 2**32 - 1),
    "uint64": (0, 2**64 - 1),
}
_MSG_KINDS = (
    "cmd_in",
    "cmd_out",
    "data_in",
    "data_out",
    "audio_frame_in",
    "audio_frame_out",
    "video_frame_in",
    "video_frame_out",
)


def standin_ai_base_api() -> Path:
    """The ``api`` folder of the stand-in ``ten_ai_base`` package, wherever it is
    installed (next to this package in ``standalone/stubs``, or where tman puts
    the real one in the installed layout)."""
    import ten_ai_base

    return Path(ten_ai_base.__file__).resolve().parent / "api"


class SchemaError(ValueError):
    pass


def object_schema(prop: dict | None) -> dict:
    """Normalise an ``api.property`` block to ``{"properties": {...}, ...}``.

    TEN 0.11 writes ``{"properties": {...}}``; older manifests list the
    properties directly.
    """
    if not prop:
        return {"properties": {}}
    inner = prop.get("properties")
    if isinstance(inner, dict) and not isinstance(inner.get("type"), str):
        return prop
    return {"properties": prop}


def adjust(value: Any, schema: dict, path: str = "") -> Any:
    """Return ``value`` adjusted to ``schema``; raise SchemaError if it cannot be."""
    t = schema.get("type")
    if t is None:
        return value
    if t == "string":
        if isinstance(value, str):
            return value
    elif t == "bool":
        if isinstance(value, bool):
            return value
    elif t in _INT_RANGES:
        if isinstance(value, int) and not isinstance(value, bool):
            lo, hi = _INT_RANGES[t]
            if lo <= value <= hi:
                return value
            raise SchemaError(f"{path}: the value {value} is out of range for `{t}`")
    elif t in ("float32", "float64"):
        if isinstance(value, float):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    elif t == "object":
        if isinstance(value, dict):
            return adjust_object(value, schema, path)
    elif t == "array":
        if isinstance(value, list):
            items = schema.get("items") or {}
            return [adjust(v, items, f"{path}[{i}]") for i, v in enumerate(value)]
    elif t == "buf":
        if isinstance(value, (bytes, bytearray)):
            return value
    else:  # ptr and unknown types are not checked
        return value
    raise SchemaError(
        f"{path}: unsupported conversion from `{type_name(value)}` to `{t}`"
    )


def adjust_object(value: dict, schema: dict, path: str = "") -> dict:
    props = schema.get("properties") or {}
    out = dict(value)
    for key, sub in props.items():
        if key in out:
            out[key] = adjust(out[key], sub, f"{path}.{key}")
    for key in schema.get("required") or []:
        if key not in out:
            raise SchemaError(f"{path}: the property `{key}` is required")
    return out


class ApiSchema:
    """The ``api`` section of an extension manifest, with its interfaces merged."""

    def __init__(self) -> None:
        self.property: dict = {"properties": {}}
        self.messages: dict[tuple[str, str], dict] = {}
        self.has_property_schema = False

    def message_schema(self, kind: str, name: str) -> dict | None:
        return self.messages.get((kind, name))

    def _merge_api(self, api: dict, base_dir: str, own: bool) -> None:
        if "property" in api:
            self.has_property_schema = True
            merged = object_schema(api["property"])
            props = dict(self.property.get("properties", {}))
            for k, v in merged.get("properties", {}).items():
                if own or k not in props:
                    props[k] = v
            self.property = {**self.property, **merged, "properties": props}
        for kind in _MSG_KINDS:
            for entry in api.get(kind) or []:
                key = (kind, entry.get("name"))
                if own or key not in self.messages:
                    self.messages[key] = object_schema(entry.get("property"))
        for iface in api.get("interface") or []:
            path = resolve_import_uri(iface.get("import_uri", ""), base_dir)
            if path is None:
                continue  # observed: silently no schema
            with open(path, encoding="utf-8") as f:
                self._merge_api(json.load(f), str(Path(path).parent), own=False)


def resolve_import_uri(uri: str, base_dir: str) -> str | None:
    """Relative to the extension dir; falls back to the stand-in ten_ai_base/api."""
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    path = os.path.normpath(os.path.join(base_dir, uri))
    if os.path.isfile(path):
        return path
    marker = "ten_ai_base/api/"
    norm = uri.replace(os.sep, "/")
    if marker in norm:
        fallback = standin_ai_base_api() / norm.split(marker, 1)[1]
        if fallback.is_file():
            return str(fallback)
    return None


def load_api_schema(base_dir: str | None) -> ApiSchema | None:
    if not base_dir:
        return None
    manifest = Path(base_dir) / "manifest.json"
    if not manifest.is_file():
        return None
    with open(manifest, encoding="utf-8") as f:
        api = json.load(f).get("api") or {}
    schema = ApiSchema()
    schema._merge_api(api, base_dir, own=True)
    return schema
