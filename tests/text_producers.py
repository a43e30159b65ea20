"""The producers that really feed a TTS node in TEN, re-implemented for tests.

* ``ten_splitter``: the sentence splitter of TEN's voice-assistant control node
  (``main_python``), written from its description in
  ``shared/reference/ten-tts-contract.md`` §2.9, not from TEN's code: the streamed
  text is cut right after each of ``, ， . 。 ? ？ ! ！``; what follows a cut, spaces
  included, starts the next piece; a cut piece with no letter or digit is
  dropped; the remaining fragment (often ``""``) goes last, with
  ``text_input_end``.
* ``token_stream``: an LLM wired straight to the node: chunks of 1 to 6
  characters, seeded, carrying their own spaces.
* ``stripped_sentences``: a producer that strips its segments (the exception):
  the splitter's pieces with surrounding whitespace removed.

Each returns the list of segments; the last one is sent with ``text_input_end``.
"""

from __future__ import annotations

import random
import re

CUTS = frozenset(",，.。?？!！")


def ten_splitter(text: str) -> list[str]:
    segments: list[str] = []
    fragment: list[str] = []
    for ch in text:
        fragment.append(ch)
        if ch in CUTS:
            piece = "".join(fragment)
            fragment = []
            if any(c.isalnum() for c in piece):
                segments.append(piece)
    segments.append("".join(fragment))
    return segments


def token_stream(text: str, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    segments: list[str] = []
    i = 0
    while i < len(text):
        k = rng.randint(1, 6)
        segments.append(text[i : i + k])
        i += k
    segments.append("")
    return segments


def stripped_sentences(text: str) -> list[str]:
    return [s.strip() for s in ten_splitter(text)]


PRODUCERS = {
    "ten_splitter": ten_splitter,
    "token_stream": token_stream,
    "stripped_sentences": stripped_sentences,
}

_CUT_RUN = re.compile(r"([.!?,。！？，])[.!?,。！？，]+")
_CJK = "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff01-\uff60"
_CJK_SPACE = re.compile(f"(?<=[{_CJK}])\\s+|\\s+(?=[{_CJK}])")


def words(text: str) -> list[str]:
    """The words a listener hears, as written: whitespace-separated tokens.

    Whitespace next to CJK text separates nothing (CJK has no spaces). A token
    without a letter or digit (a lone ``!``, ``»``) goes with the word before it,
    and a run of cut punctuation counts as its first mark, because the splitter
    drops a cut piece without a letter or digit (the second ``.`` of ``..``).
    ``example. com`` is two words; ``example.com`` one.
    """
    out: list[str] = []
    for token in _CJK_SPACE.sub("", text).split():
        if out and not any(c.isalnum() for c in token):
            out[-1] += token
        else:
            out.append(token)
    return [_CUT_RUN.sub(r"\1", w) for w in out]
