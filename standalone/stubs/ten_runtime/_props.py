"""Property trees: dotted paths, JSON text, and the getters' observed quirks.

Contract §1.5 (env getters) and §1.6 (message getters). Property trees are plain
JSON-like Python values (dict/list/str/int/float/bool/None, plus bytes for bufs).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .error import VALUE_NOT_FOUND, TenError, _make

_MISSING = object()
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_path(path: str | None) -> list[str | int]:
    if not path:
        return []
    return [name if name else int(idx) for name, idx in _SEGMENT.findall(path)]


def lookup(root: Any, path: str | None) -> Any:
    """The value at ``path`` or ``_MISSING``."""
    node = root
    for seg in parse_path(path):
        if isinstance(seg, int):
            if not isinstance(node, list) or seg >= len(node):
                return _MISSING
        elif not isinstance(node, dict) or seg not in node:
            return _MISSING
        node = node[seg]
    return node


def assign(root: dict, path: str | None, value: Any) -> dict:
    """Set ``value`` at ``path`` (creating objects on the way); returns the new root.

    An empty path REPLACES the whole object (contract §1.6, verified).
    """
    segs = parse_path(path)
    if not segs:
        if not isinstance(value, dict):
            raise TypeError("the root of a property tree must be an object")
        return value
    node: Any = root
    for seg, nxt in zip(segs, segs[1:], strict=False):
        if isinstance(seg, int):
            node = node[seg]
            continue
        if not isinstance(node.get(seg), (dict, list)):
            node[seg] = [] if isinstance(nxt, int) else {}
        node = node[seg]
    last = segs[-1]
    if isinstance(last, int) and isinstance(node, list) and last == len(node):
        node.append(value)
    else:
        node[last] = value
    return root


def type_name(v: Any) -> str:
    """TEN's name for a JSON value's type (yyjson: non-negative ints are uint64)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "uint64" if v >= 0 else "int64"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (bytes, bytearray)):
        return "buf"
    if isinstance(v, list):
        return "array"
    return "object"


def _json_default(o: Any) -> Any:
    if isinstance(o, (bytes, bytearray)):
        return list(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def to_json(value: Any) -> str:
    """Pretty-printed with 4-space indentation, like the real runtime."""
    return json.dumps(value, indent=4, ensure_ascii=False, default=_json_default)


def parse_json(json_str: str, where: str) -> Any:
    try:
        return json.loads(json_str)
    except (TypeError, ValueError):
        raise ValueError(f"Failed to parse json when {where}.") from None


def not_found(path: str | None) -> TenError:
    return _make(VALUE_NOT_FOUND, f"Failed to find value: {path}")


def _unfit(src: Any, dst: str) -> TenError:
    return _make(1, f"The conversion from {type_name(src)} to {dst} is unfit.")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# --- getters as seen on a message (§1.6): wrong types are reported -------------


def msg_get(root: Any, path: str, kind: str) -> tuple[Any, TenError | None]:
    v = lookup(root, path)
    empty = {"string": "", "int": 0, "float": 0.0, "bool": False}[kind]
    if v is _MISSING:
        return empty, not_found(path)
    if kind == "string":
        return (
            (v, None) if isinstance(v, str) else ("", _make(3, "Value is not string."))
        )
    if kind == "int":
        if _is_int(v):
            return v, None
        if isinstance(v, str):
            return 0, _make(1, "The conversion from string to uint32 is unfit.")
        return 0, _unfit(v, "int64")
    if kind == "float":
        return (v, None) if isinstance(v, float) else (0.0, _unfit(v, "float64"))
    return (v, None) if isinstance(v, bool) else (False, _unfit(v, "bool"))


# --- getters as seen on an env (§1.5): observed quirks --------------------------


def env_get(root: Any, path: str, kind: str) -> tuple[Any, TenError | None]:
    v = lookup(root, path)
    empty = {"string": "", "int": 0, "float": 0.0, "bool": False}[kind]
    if v is _MISSING:
        return empty, not_found(path)
    if kind == "string":
        # Observed: a non-string gives (None, None).
        return (v, None) if isinstance(v, str) else (None, None)
    if kind == "int":
        # Observed: a non-integer gives (0, None).
        return (v, None) if _is_int(v) else (0, None)
    if kind == "float":
        # Observed: an integer gives (0.0, code 1 "... from int64 to float32 ...").
        if isinstance(v, float):
            return v, None
        src = "int64" if _is_int(v) else type_name(v)
        return 0.0, _make(1, f"The conversion from {src} to float32 is unfit.")
    return (v, None) if isinstance(v, bool) else (False, _unfit(v, "bool"))
