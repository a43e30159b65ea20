"""Parsing of incoming ``text`` chunks: fault markers and Gradium's inline tags.

* Fault markers ``[[fault:<kind>]]`` / ``[[fault:<kind>:<arg>]]`` are a feature of this
  local server only (so a separate server process can be steered from the client
  side); they are removed before synthesis.
* ``<flush>`` (reference §2.2/§2.3) forces out the audio held back so far.
* ``<break time="1.5s" />`` (reference §2.2) inserts a pause, clamped to 0.1-2.0 s.

Word boundaries: a message boundary is a word boundary (reference §2.2 [inferred]:
the official examples send bare words without trailing spaces). Consequently nothing
is held back waiting for the rest of a word: each ``text`` message is synthesized as
soon as it is processed, and a client that splits a word across two messages hears
two words (reference: "Do not split a word across messages").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKER_RE = re.compile(r"\[\[fault:([A-Za-z0-9_]+)(?::([^\]]*))?\]\]")
TAG_RE = re.compile(
    r"<flush\s*/?>|<break\s+time\s*=\s*[\"']([0-9]*\.?[0-9]+)\s*(ms|s)[\"']\s*/?>",
    re.IGNORECASE,
)
WORD_RE = re.compile(r"\S+")

BREAK_MIN_S = 0.1
BREAK_MAX_S = 2.0


@dataclass(frozen=True)
class Part:
    kind: str  # "speech" | "break" | "flush"
    text: str = ""
    seconds: float = 0.0


def extract_markers(text: str) -> tuple[str, list[tuple[str, str | None]]]:
    """Remove fault markers; return the cleaned text and (kind, arg) pairs."""
    found = [(m.group(1).lower(), m.group(2)) for m in MARKER_RE.finditer(text)]
    return (MARKER_RE.sub(" ", text) if found else text), found


def split_parts(text: str) -> list[Part]:
    """Split a chunk into speech / break / flush parts, in order."""
    parts: list[Part] = []
    pos = 0
    for m in TAG_RE.finditer(text):
        if m.start() > pos:
            parts.append(Part("speech", text[pos : m.start()]))
        if m.group(1) is None:
            parts.append(Part("flush"))
        else:
            value = float(m.group(1)) / (1000.0 if m.group(2).lower() == "ms" else 1.0)
            parts.append(
                Part("break", seconds=min(BREAK_MAX_S, max(BREAK_MIN_S, value)))
            )
        pos = m.end()
    if pos < len(text):
        parts.append(Part("speech", text[pos:]))
    return [p for p in parts if p.kind != "speech" or p.text.strip()]


def is_speakable(token: str) -> bool:
    """A token gets audio and a word timestamp only if it has a letter or digit."""
    return any(ch.isalnum() for ch in token)


def words(text: str) -> list[str]:
    return WORD_RE.findall(text)
