"""What the voice says: join streamed segments, strip LLM markdown and emoji.

No TEN import. One ``TextShaper`` per request: ``feed(segment)`` returns the text
to send now, ``finish()`` what is still held at the end of the request. Nothing
of the answer is lost: what is not markup is said, and a construct that turns
out to be none gives its text back.

* ``SegmentJoiner`` concatenates segments as they are: the producers that feed a
  TTS node in TEN keep their own spaces (TEN's sentence splitter sends
  ``Visit example.`` + ``com now.``), and Gradium concatenates ``text`` messages.
  Nothing is added at a boundary with whitespace on either side, nor once the
  producer has shown it keeps its whitespace. For a producer that strips its
  segments, ``_separator`` decides from both sides of the boundary: a space, or
  nothing (never inside a dotted name, a version, an e-mail, a URL, CamelCase,
  next to CJK). A line break such a producer removed before a block its segment
  shows (a heading, a bullet, a fence...) is passed to the filter as ``_SOFT``,
  which it reads as a line break and sends as a space: the joiner never writes a
  character the filter could read as markup. A list number alone (``how.`` +
  ``1.``) waits for the next segment, which says whether it was one.

* ``MarkdownFilter`` removes what must not be read aloud, streaming: emphasis
  delimiters, headings, list and task markers, blockquotes, rules, links (the
  text is spoken, the URL is not), reference links and their definitions, inline
  code (spoken without backticks), fenced code blocks (dropped whole), emoji and
  pictographs. Bare URLs (up to where a URL ends), numbers, punctuation, other
  scripts, Gradium's inline tags and the local server's ``[[fault:...]]`` markers
  pass through. It holds back only what it cannot decide yet (a ``*`` run at the
  end of a segment, a ``]``, a destination, a code span up to the end of its
  line, a line start that may be a marker), carries its state, and never
  re-reads held text: what can grow is held as a run, counted aside, and every
  other hold is bounded.

* ``TextShaper`` never ends a message inside a word, a number (after the first
  words: a trailing digit and ``.`` or ``,`` waits, as Gradium's own agent
  does) or a Gradium tag (``<break .../>``, ``<flush>``), and puts the spaces
  Gradium needs around ``<break .../>``.
"""

from __future__ import annotations

import re
import time
import unicodedata

__all__ = ["MarkdownFilter", "SegmentJoiner", "TextShaper", "is_speakable"]


def is_speakable(text: str) -> bool:
    """Whether text can make a sound: it has a letter or a digit (any script)."""
    return any(ch.isalnum() for ch in text)


# ----------------------------------------------------------------- characters
# Pictographs removed by the filter: Extended_Pictographic (Unicode emoji data)
# minus the text symbols that read as words or punctuation (© ® ™ ‼ ⁉ arrows, CJK
# 〰 〽 ㊗ ㊙), plus ☆ ✓ ✗; regional indicators (flags) and skin tones included.
_PICT = (
    "\u2139\u231a\u231b\u2328\u2388\u23cf\u23e9-\u23f3\u23f8-\u23fa\u24c2"
    "\u25aa\u25ab\u25b6\u25c0\u25fb-\u25fe\u2600-\u2612\u2614-\u2685\u2690-\u2705"
    "\u2708-\u2714\u2716\u2717\u271d\u2721\u2728\u2733\u2734\u2744\u2747\u274c"
    "\u274e\u2753-\u2755\u2757\u2763-\u2767\u2795-\u2797\u27a1\u27b0\u27bf"
    "\u2934\u2935\u2b05-\u2b07\u2b1b\u2b1c\u2b50\u2b55"
    "\U0001f000-\U0001f0ff\U0001f10d-\U0001f10f\U0001f12f\U0001f16c-\U0001f171"
    "\U0001f17e\U0001f17f\U0001f18e\U0001f191-\U0001f1ff\U0001f201-\U0001f20f"
    "\U0001f21a\U0001f22f\U0001f232-\U0001f23a\U0001f23c-\U0001f23f"
    "\U0001f249-\U0001f64f\U0001f680-\U0001f6ff\U0001f774-\U0001f77f"
    "\U0001f7d5-\U0001f7ff\U0001f80c-\U0001f80f\U0001f848-\U0001f84f"
    "\U0001f85a-\U0001f85f\U0001f888-\U0001f88f\U0001f8ae-\U0001f8ff"
    "\U0001f90c-\U0001faff\U0001fc00-\U0001fffd"
)
# Invisible emoji parts: variation selectors, keycap, tags (subdivision flags).
_EMOJI_PART = "\ufe0e\ufe0f\u20e3\U000e0001\U000e0020-\U000e007f"
_PICT_RE = re.compile(f"[{_PICT}]")
_EMOJI_ANY_RE = re.compile(f"[{_PICT}{_EMOJI_PART}\u200d]")

# CJK: no spaces between sentences or words.
_CJK_RE = re.compile(
    "[\u2e80-\u2fdf\u3000-\u30ff\u3190-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\ufe30-\ufe4f\uff01-\uff60\uff61-\uff9f\U00020000-\U0003134f]"
)
# ---------------------------------------------------------------------- joiner
# A line break the joiner knows of but the text lost (a producer that strips its
# segments sent "## Tipps" after "gilt ab 2025."): the filter reads it as a line
# break, Gradium gets a space. U+FFFF is a noncharacter, for internal use only;
# one in a segment is dropped.
_SOFT = "\uffff"
_SENT_END = set(".!?…")
_OPEN_QUOTES = "\"“«‘„‹»'"
_BLOCK_AFTER = set(".!?:…。！？：,，")
_DOTTED = set(".@/:")  # in a word: a dotted name, an e-mail, a URL, a time
# What a segment shows of a block when it starts right after a sentence end: a
# heading, a bullet, a quote, a numbered item with its text, a rule, a reference
# link's definition ("[1]: https://...").
_BLOCK_RE = re.compile(
    r"(?:#{1,6}[ \t]+\S|[-*+•][ \t]+\S|>[ \t]*\S|\d{1,3}[.)][ \t]+\S"
    r"|(?:([-*_])[ \t]*){3,}(?:\n|$)|\[[^\]\n]{1,64}\]:[ \t])"
)
# A fence whose line does not close it (not ```inline```): after anything.
_FENCE_RE = re.compile(r"(?:`{3,}[^`\n]*|~{3,}[^\n]*)(?:\n|$)")
_FENCE_LINE_END_RE = re.compile(r"(?:^|\n)[ \t]*(?:`{3,}|~{3,})$")
_MARKER_END_RE = re.compile(r"(?:^|\n)[ \t]*(\d{1,3})[.)]$")  # a list number alone
_ITEM_NUMBER_RE = re.compile(r"(\d{1,3})\.")  # "2." alone: an item, or a decimal
_ITEM_RE = re.compile(f"(?:^|[\n{_SOFT}])[ \t]*(\\d{{1,3}})[.)][ \t]")  # a list number
_NOT_ITEM_TEXT = set(".,;:!?)%/-")  # after "2." goes on a number, not an item
_TAIL = 256
_ABBREV_RE = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # e.g / i.e / a.m (the last . cut)
_NO_VOWEL_RE = re.compile(r"[b-df-hj-np-tv-xz]+")  # nn, np, pd, tf: no word ends so
_CODE_NEXT_RE = re.compile(r"\w+[(\[<]")  # Module(), Tensor[...]: code goes on


class SegmentJoiner:
    """Concatenates segments as they are; adds a space only where a producer that
    strips its segments ran two sentences together, and marks (``_SOFT``) a line
    break such a producer removed before a block the segment itself shows.

    A producer that has shown it keeps its own spaces (a segment began or ended
    with whitespace) never gets anything added: its text is already the text.
    A list number alone after a sentence (``how.`` + ``1.``) is kept back until
    the next segment says whether it was one (``hold=False``: not kept, for the
    first words of a request); ``finish`` gives back what is kept.
    """

    def __init__(self) -> None:
        self._tail = ""  # the last characters of the text joined so far
        self._spaced = False  # the producer keeps its own whitespace
        self._held = ""  # joined, not passed on yet: a list number alone ("1.")
        self._item_sep = ""  # the held text is a list number alone: its separator
        self._item = False
        self._last_item = -1  # the number of the last list item seen

    def join(self, segment: str, hold: bool = True) -> str:
        if _SOFT in segment:
            segment = segment.replace(_SOFT, "")
        if not segment:
            return ""
        tail = self._tail
        held, self._held = self._held, ""
        item, self._item = self._item, False
        touch = bool(tail) and (tail[-1].isspace() or segment[0].isspace())
        if touch:
            self._spaced = True
        if item:  # "how." + "1." + ?: the list number's text, or a number
            if not touch and _item_text(segment):  # a digit: "3." + "14", said
                held = _SOFT + held + " "
            else:
                held = self._item_sep + held
                if not touch:
                    held += _separator(tail, segment)
        elif tail and not touch and not self._spaced:
            m = _ITEM_NUMBER_RE.fullmatch(segment) if hold else None
            end = tail.rstrip("*_~")[-1:]
            number = int(m.group(1)) if m else -1
            digit = tail[-2:-1].isdigit()  # "10." + "0.": a number goes on
            # "Mix." + "2." after a "1." (but "3," + "5.": 3,5)
            following = number == self._last_item + 1 > 1 and not (digit and end == ",")
            if (
                # "how." + "1.": a first item; "ca." + "11.": a number
                (number == 1 and not digit and (end in _SENT_END or end in ":：。！？"))
                or following
            ):  # wait for the text
                self._item, self._item_sep = True, _separator(tail, segment)
                self._held = segment
                self._tail = (tail + segment)[-_TAIL:]
                return held
            sep = _separator(tail, segment)
            if sep == " " and (m := _MARKER_END_RE.search(_line_end(tail))):
                self._last_item = int(m.group(1))
            segment = sep + segment
        text = held + segment
        if "." in text or ")" in text:
            for m in _ITEM_RE.finditer(text if tail[-1:] in ("", "\n") else "x" + text):
                self._last_item = int(m.group(1))
        self._tail = (tail + segment.replace(_SOFT, "\n"))[-_TAIL:]
        return text

    def finish(self) -> str:
        held, self._held, self._item = self._held, "", False
        return held


def _line_end(tail: str) -> str:
    """The end of the tail, enough to see a list number or a fence alone on its
    line ("\x00": a cut, where no line starts)."""
    return tail if len(tail) <= 16 else "\x00" + tail[-16:]


def _item_text(segment: str) -> bool:
    """Whether a segment after a list number alone is its text ("Open the app"),
    not more of a number ("0." of "2.0.1")."""
    f = segment.lstrip("*_~")
    if not f or f[0].isdigit() or f[0].isspace() or f[0] in _NOT_ITEM_TEXT:
        return False
    return not (_FENCE_RE.match(segment) or _BLOCK_RE.match(segment))  # a block


def _separator(tail: str, segment: str) -> str:
    """What goes between two segments that touch without whitespace: "", a space,
    or _SOFT (a line break the producer stripped before a block)."""
    if tail[-1] == segment[0] and tail[-1] in "*_~`#-":
        return ""  # one run cut in two: "htig:*" + "* D"
    end = _line_end(tail)
    if _FENCE_RE.match(segment) or _FENCE_LINE_END_RE.search(end):
        return _SOFT  # "20." + "```bash", "ls" + "```", "```" + "Done."
    t = tail.rstrip("*_~")
    if (
        t[-1:] in _BLOCK_AFTER
        and (b := _BLOCK_RE.match(segment))
        and not (b.group()[0].isdigit() and t[-2:-1].isdigit())  # "2.5." + "1. x"
    ):
        return _SOFT  # a heading, list item, quote or rule begins a line
    if _MARKER_END_RE.search(end) and _item_text(segment):
        return " "  # "1." + "Open": a list number alone on its line needs its space
    if not t or (len(t) < len(tail) and t[-1].isspace()):
        return ""  # an opening delimiter run: what follows attaches to it
    last = t[-1]
    emphasis = segment[:1] in ("*", "_") and segment.lstrip("*_")[:1].isalpha()
    f = segment.lstrip("*_~")
    if not f or f[0].isspace():
        return ""
    first = f[0]
    nxt = f[1] if len(f) > 1 else ""
    opens = first in "¿¡" or (first in _OPEN_QUOTES and (nxt.isalpha() or nxt in "¿¡"))
    if last == ",":  # a clause cut by a sentence splitter, then stripped
        is_word = first.isalpha() and not _CJK_RE.match(first)
        return " " if is_word or opens else ""  # never "1," + "000"
    if last in ":;" and opens:
        return " "  # He said: "Stop."
    if last not in _SENT_END:
        return ""
    word = t[:-1].rsplit(None, 1)[-1] if t[:-1].strip() else ""
    if len(word) == len(t) - 1 and len(t) >= _TAIL:
        return ""  # a token longer than we keep: some code
    word = word.lstrip("*_~`\"“«‘„'([¿¡")
    m = re.match(r"\S*", f)
    assert m is not None
    f_word = m.group()
    inner = f_word.rstrip('.,;:!?)*_~`"”’»')
    # The first word has more text after it, or ends a clause: a sentence.
    followed = m.end() < len(f) or f_word[-1:] in (",", ";", "!", "?")
    if _CJK_RE.search(word) or _CJK_RE.match(first) or _CJK_RE.search(inner):
        return ""  # a Latin "." inside CJK text ends no sentence: 继承React.Component
    if m.end() == len(f) and f_word[-1].isalnum():
        # "tem." + "I", "Console." + "Wri": one word and no end, a token (a
        # stripping producer's segments end where its splitter cut: . , ! ?)
        return ""
    if emphasis or opens or first in "([" or _PICT_RE.match(first):
        return " "  # Shipped. **Note:**, Hola. ¿Qué?, Great! 😊
    if first == "<" and nxt.isalpha():
        return " "  # a Gradium tag: <break time="1s" />
    if first.isdigit():
        # "ready." + "42 people": a sentence; "3." + "14", "v1." + "2": a number
        return " " if len(word) >= 2 and word.isalpha() else ""
    if first.islower():
        if followed and _ABBREV_RE.fullmatch(word):
            return " "  # e.g. this, a.m. and
        return ""  # example.com, Node.js
    if not (first.isalpha() and (first.isupper() or first.lower() == first.upper())):
        return ""  # closing punctuation, a symbol: one word
    if "@" in word or "://" in word:
        # a@b.io. + Thanks.: an e-mail or a URL ends; its rest would be lowercase
        if inner.isalpha() and not any(c.isupper() for c in inner[1:]):
            return " "
    if any(c in _DOTTED for c in inner):
        return ""  # the rest of an e-mail or a URL: no sentence starts so
    if len(word) == 1 and word.isalpha():
        # U.S., J.K., but "B." + "I checked." and "M." + "Dupont sera là."
        initial = f_word[1:2] == "." and f_word[:1].isalpha()  # "S." of U.S.!
        return " " if followed and not initial and f_word[-1:] != "." else ""
    if any(c in _DOTTED for c in word) and not followed:
        return ""  # inside a dotted name, an e-mail or a URL
    letters = "".join(c for c in inner if c.isalpha())
    if len(letters) >= 2 and letters.isupper():
        return ""  # ASP.NET, System.IO
    if re.search(r"[a-z][A-Z]", inner):
        return ""  # Console.WriteLine
    if _NO_VOWEL_RE.fullmatch(word) or _CODE_NEXT_RE.match(f_word):
        return ""  # nn.Module, torch.Tensor(...)
    return " "


# ---------------------------------------------------------------------- filter
_SPECIAL = re.compile(
    r"(?<![0-9A-Za-z])[0-9#*](?=\ufe0f|\u20e3|\Z)"  # a keycap, or maybe one
    f"|[*_~`\\[\\]\\\\\\n{_SOFT}!:\u200d{_PICT}{_EMOJI_PART}]"
)
_NL = "\n" + _SOFT
_NL_RE = re.compile(f"[\n{_SOFT}]")
_TICKS_OR_NL_RE = re.compile(f"`+|[\n{_SOFT}]")
_SPACES_RE = re.compile(r"[ \t]*")
_RULE_RES = {c: re.compile(f"[ \t{re.escape(c)}]*") for c in "-*_"}
_FAULT_RE = re.compile(r"\[\[fault:[A-Za-z0-9_]+(?::[^\]]*)?\]\]")
_FAULT_PREFIX = "[[fault:"
_SCHEME_RE = re.compile(r"(?:https?|ftp|wss?)$", re.IGNORECASE)
# What a bare URL is made of (RFC 3986, and letters of Latin scripts); it ends at
# anything else: whitespace, ``*`` ``]`` ``<`` ``"`` ``` ` ```, CJK, emoji.
_URL_RE = re.compile(r"[A-Za-z0-9\-._~:/?#@!$&'()*+,;=%\u00c0-\u024f]*")
_URL_TRAIL = set(".,:;!?*~'")  # ends a sentence, not a URL (GFM autolinks)
_URL_TRAIL_MAX = 32
# "[label]: https://..." at a line start: a reference link's definition.
_DEFINITION_RE = re.compile(r"\[[^\]\n]{1,64}\]:")
_DEFINITION_PREFIX_RE = re.compile(r"\[[^\]\n.,;!?]{0,64}\]?")
_LABEL_RE = re.compile(r"\[[^\]\[\n]{0,64}\]")  # [1] of [the guide][1]
_CODE_SPAN_MAX = 200  # an inline code span longer than that is no span
_TERMINAL = set(".!?:;,…。！？：；，、")
_CLOSERS = set('"”’»«“」』）)]')  # "Halt!“ ends with its "!"
_BULLETS = set("-*+•◦‣▪▸►")
_ASCII_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_FAULT_MAX = 200
_HOLD = -1
_RUN_CHARS = set("*_~`#-")  # a held run of one of these is decided by what follows
_RUN_RES = {c: re.compile(re.escape(c) + "+") for c in "*_~`#-"}


def _run_end(s: str, k: int) -> int:
    """The end of the run of s[k] that starts at k (s[k] one of ``*_~`#-``)."""
    if k < len(s) and (r := _RUN_RES.get(s[k])):
        return r.match(s, k).end()
    return k


class MarkdownFilter:
    """Streaming removal of markdown syntax and emoji (see the module docstring)."""

    def __init__(self) -> None:
        self._buf = ""  # text held back, not decided yet
        self._prev = ""  # the last input character consumed
        self._rawtail = ""  # the last input characters consumed (for URL schemes)
        self._line_start = True
        self._line_kind = ""  # "heading" / "item": ends with a period if it has none
        self._line_has_text = False
        self._last_vis = ""  # the last non-space character emitted
        self._vis_before = ""  # the character emitted before it
        self._last_out = ""
        self._drop_space = False  # spaces after a removed marker or emoji
        self._maybe_box = False  # after a list marker: a task box "[ ] " may follow
        self._fence: tuple[str, int] | None = None
        self._fence_bol = False
        self._url_depth = 0  # inside a link's (destination): parenthesis depth
        self._url_gap = ""  # after the destination: "" / " " (spaces) / '"' (title)
        self._dest: list[str] = []  # the raw "(destination", given back if no link
        self._link_open = 0  # "[" seen on this line (their text is spoken)
        self._emphasis: set[tuple[str, int]] = set()  # delimiter runs open on the line
        self._skip_line = False  # a reference definition: the line is not spoken
        self._run_set: frozenset[str] = frozenset()  # self._buf is made of these only
        self._more: list[str] = []  # more of that run, not yet added to self._buf
        self._bare_url = False
        self._url_parens = 0  # "(" minus ")" in the bare URL so far

    # ----------------------------------------------------------------- public
    def feed(self, text: str) -> str:
        if not text:
            return ""
        if self._run_set and self._run_set.issuperset(text):
            # More of a run that is held whole (``*``, ``-``, spaces, backticks at
            # a line start...): still undecided, and not rescanned.
            self._more.append(text)
            return ""
        self._buf += "".join(self._more) + text
        self._more = []
        return self._run(final=False)

    def finish(self) -> str:
        self._buf += "".join(self._more)
        self._more = []
        out = self._run(final=True)
        if self._url_depth:  # an unclosed destination: it was no link
            out += self._give_back()
        if self._line_kind:
            out += self._end_line()
        return out

    # ------------------------------------------------------------------- loop
    def holds_speakable(self) -> bool:
        """Whether text held back (not decided yet) has a letter or digit."""
        return is_speakable(self._buf)

    def _run(self, final: bool) -> str:
        s = self._buf
        n = len(s)
        out: list[str] = []
        i = 0
        while i < n:
            if self._fence is not None:
                j = self._in_fence(s, i, final, out)
            elif self._url_depth:
                j = self._in_url(s, i, out)
            elif self._skip_line:
                m = _NL_RE.search(s, i)
                j = m.start() if m else n
                if m:
                    self._skip_line = False
            elif self._line_start:
                j = self._at_line_start(s, i, final)
            elif self._bare_url:
                j = self._in_bare_url(s, i, final, out)
            else:
                j = self._inline(s, i, final, out)
            if j == _HOLD:
                break
            i = j
        if i:
            self._prev = s[i - 1]
            self._rawtail = (self._rawtail + s[max(0, i - 8) : i])[-8:]
        self._buf = s[i:]
        self._run_set = self._held_run(self._buf)
        return "".join(out)

    def _held_run(self, b: str) -> frozenset[str]:
        """The characters more of which cannot decide the held text."""
        if not b:
            return frozenset()
        c = b[0]
        if self._line_start and c in " \t":
            rest = b.lstrip(" \t")
            if not rest:
                return frozenset(" \t")
            c = rest[0]
            if c in "-*_" and not rest.strip(c + " \t"):
                return frozenset(c + " \t")  # "- - -": a rule, or a list?
            return frozenset()
        if self._line_start and c in "-*_" and not b.strip(c + " \t"):
            return frozenset(c + " \t")
        if c in _RUN_CHARS and b.count(c) == len(b):
            return frozenset(c)
        return frozenset()

    def _emit(self, out: list[str], text: str) -> None:
        if not text:
            return
        if _SOFT in text:
            text = text.replace(_SOFT, " ")
        out.append(text)
        self._last_out = text[-1]
        visible = text.rstrip()
        if visible:
            self._vis_before = visible[-2] if len(visible) > 1 else self._last_vis
            self._last_vis = visible[-1]
            if not self._line_has_text and is_speakable(visible):
                self._line_has_text = True

    def _end_line(self) -> str:
        """A heading or list item without final punctuation gets a period."""
        kind, self._line_kind = self._line_kind, ""
        ended = self._last_vis in _TERMINAL or (
            self._last_vis in _CLOSERS and self._vis_before in _TERMINAL
        )
        if kind and self._line_has_text and not ended:
            stop = "。" if _CJK_RE.match(self._last_vis) else "."
            self._last_vis = stop
            return stop
        return ""

    def _removed(self) -> None:
        """Something was removed: do not leave a double space behind it."""
        if not self._last_out or self._last_out.isspace():
            self._drop_space = True

    def _new_line(self) -> None:
        self._line_start = True
        self._line_has_text = False
        self._link_open = 0
        self._drop_space = False
        self._maybe_box = False
        self._emphasis.clear()

    # ------------------------------------------------------------ line starts
    def _at_line_start(self, s: str, i: int, final: bool) -> int:
        n = len(s)
        j = _SPACES_RE.match(s, i).end()
        if j == n:
            if final:
                self._line_start = False
                return i
            return _HOLD
        c = s[j]
        if c == ">":  # blockquote: drop, and look at what follows on the line
            self._drop_space = True
            return j + 1
        if c == "[":  # [label]: https://...  (a reference definition)
            if _DEFINITION_RE.match(s, j):
                self._line_start = False
                self._skip_line = True
                return j
            m = _DEFINITION_PREFIX_RE.match(s, j)
            if m.end() == n and not final:
                return _HOLD
            self._line_start = False
            return i
        k = _run_end(s, j)
        run = k - j
        if c in "`~":
            if k == n and not final:
                return _HOLD
            if run >= 3:
                self._line_start = False
                self._fence, self._fence_bol = (c, run), False
                return k
        elif c == "#":
            if k == n and not final:
                return _HOLD
            if run <= 6 and (k == n or s[k] in " \t" or s[k] in _NL):
                self._line_start = False
                self._line_kind = "heading"
                self._drop_space = True
                return k
        elif c in "-*_" or c in _BULLETS or c.isdigit():
            if c in "-*_":  # a thematic break: --- *** ___ (spaces allowed)
                m = _RULE_RES[c].match(s, j).end()
                if m == n and not final:
                    return _HOLD
                if s.count(c, j, m) >= 3 and (m == n or s[m] in _NL):
                    self._line_start = False
                    return m
            marker_end = self._list_marker(s, j, final)
            if marker_end == _HOLD:
                return _HOLD
            if marker_end:
                self._line_start = False
                self._line_kind = "item"
                self._drop_space = True
                self._maybe_box = True
                return marker_end
        self._line_start = False
        return i

    def _list_marker(self, s: str, j: int, final: bool) -> int:
        """End of a list marker at s[j] (its spaces included), 0 if none, or _HOLD."""
        n = len(s)
        c = s[j]
        if c in _BULLETS:
            m = j + 1
        elif c.isdigit():
            m = j
            while m < n and s[m].isdigit() and m - j < 3:
                m += 1
            if m == n:
                return 0 if final else _HOLD
            if m - j > 2 or s[m] not in ".)":
                return 0
            m += 1
        else:
            return 0
        if m == n:
            return 0 if final else _HOLD
        if s[m] not in " \t":
            return 0
        return _SPACES_RE.match(s, m).end()

    # ------------------------------------------------------------- code, urls
    def _in_fence(self, s: str, i: int, final: bool, out: list[str]) -> int:
        n = len(s)
        assert self._fence is not None
        ch, length = self._fence
        if self._fence_bol:
            j = _SPACES_RE.match(s, i).end()
            k = _run_end(s, j) if s[j : j + 1] == ch else j
            if k == n and not final:
                return _HOLD
            if k - j >= length:
                m = _SPACES_RE.match(s, k).end()
                if m == n and not final:
                    return _HOLD
                if m == n or s[m] in _NL:  # the closing fence
                    self._fence = None
                    self._new_line()
                    if m < n:
                        self._emit(out, s[m])
                        return m + 1
                    return m
            self._fence_bol = False
        nl = _NL_RE.search(s, i)
        if nl is None:
            return n  # code is never read aloud
        self._fence_bol = True
        return nl.end()

    def _in_url(self, s: str, i: int, out: list[str]) -> int:
        """Inside a link's "(destination)": dropped if ")" closes it; given back
        if whitespace (other than before a title) or a newline shows it is none."""
        n = len(s)
        j = i
        while j < n:
            c = s[j]
            if self._url_gap == '"':  # a title: up to the ")"
                if c == ")":
                    return self._url_done(j)
                if c in _NL:
                    break
            elif c == ")" and (self._url_gap or self._url_depth == 1):
                return self._url_done(j)
            elif self._url_gap:  # spaces after the destination
                if c in "\"'":
                    self._url_gap = '"'
                elif c not in " \t":
                    break
            elif c == "(":
                self._url_depth += 1
            elif c == ")":
                self._url_depth -= 1
            elif c in " \t":
                self._url_gap = " "
            elif c in _NL:
                break
            j += 1
        else:
            self._dest.append(s[i:j])
            return n
        self._dest.append(s[i:j])
        self._emit(out, self._give_back())
        return j

    def _url_done(self, j: int) -> int:
        self._url_depth, self._url_gap, self._dest = 0, "", []
        return j + 1

    def _give_back(self) -> str:
        """The "(destination" of something that was no link, as it was written."""
        text = "".join(self._dest)
        self._url_depth, self._url_gap, self._dest = 0, "", []
        return text

    def _in_bare_url(self, s: str, i: int, final: bool, out: list[str]) -> int:
        """A bare URL (after "https://"): sent as it is, up to where a URL ends.

        Trailing ``.`` ``,`` ``*`` ``)``... end a sentence or close emphasis, not
        the URL, unless more of the URL follows: they wait for what comes next."""
        n = len(s)
        j = _URL_RE.match(s, i).end()
        k = j
        while k > i and (
            s[k - 1] in _URL_TRAIL
            or (
                s[k - 1] == ")"
                and self._url_parens + s.count("(", i, k) <= s.count(")", i, k - 1)
            )
        ):
            k -= 1
        self._url_parens += s.count("(", i, k) - s.count(")", i, k)
        self._emit(out, s[i:k])
        if j == n and not final and j - k <= _URL_TRAIL_MAX:
            return k if k > i else _HOLD  # more of the URL may follow
        self._bare_url = False
        return k

    def _code_span(self, s: str, i: int, k: int, final: bool, out: list[str]) -> int:
        """s[i:k] is a backtick run mid-line: a code span (spoken without its
        backticks) if the same run closes it on this line; else no span (the run
        is dropped, what follows is filtered), or, for ``` and more, a fence."""
        n = len(s)
        run = k - i
        j = k
        while True:
            m = _TICKS_OR_NL_RE.search(s, j)
            if m is None or m.start() - i > _CODE_SPAN_MAX:
                if m is None and not final and n - i <= _CODE_SPAN_MAX:
                    return _HOLD
                break
            if s[m.start()] in _NL:
                break
            if m.end() == n and not final:
                return _HOLD  # the closing run may go on
            if m.end() - m.start() == run:
                self._emit(out, s[k : m.start()].replace("`", ""))
                return m.end()
            j = m.end()
        if run >= 3:  # "Here: ```js" + a line break: a fence opened mid-line
            self._fence, self._fence_bol = ("`", run), False
            return k
        self._removed()
        return k

    # ----------------------------------------------------------------- inline
    def _inline(self, s: str, i: int, final: bool, out: list[str]) -> int:
        n = len(s)
        if self._drop_space or self._maybe_box:
            j = _SPACES_RE.match(s, i).end()
            if j == n:
                return n
            self._drop_space = False
            if self._maybe_box:  # - [ ] todo, - [x] done
                box = s[j : j + 4]
                if box in ("[ ] ", "[x] ", "[X] "):
                    self._maybe_box = False
                    self._drop_space = True
                    return j + 4
                if j + len(box) == n and not final:
                    if any(b.startswith(box) for b in ("[ ] ", "[x] ", "[X] ")):
                        return _HOLD if j == i else j
                self._maybe_box = False
            if j > i:
                return j
        m = _SPECIAL.search(s, i)
        if m is None:
            self._emit(out, s[i:])
            return n
        j = m.start()
        if j > i:
            self._emit(out, s[i:j])
            return j
        c = s[i]
        prev = s[i - 1] if i else self._prev
        nxt = s[i + 1] if i + 1 < n else ""

        if (
            m.end() - m.start() == 1
            and c in "0123456789#*"
            and (nxt in ("\ufe0f", "\u20e3") or i + 1 == n)
        ):
            if i == 0 and prev.isascii() and prev.isalnum():
                pass  # part of a number that began in an earlier segment
            elif nxt == "\u20e3" or s[i + 1 : i + 3] == "\ufe0f\u20e3":
                self._removed()  # a keycap
                return i + (2 if nxt == "\u20e3" else 3)
            elif not final and (i + 1 == n or (nxt == "\ufe0f" and i + 2 == n)):
                return _HOLD
            if c.isdigit():
                self._emit(out, c)
                return i + 1
        if c in _NL:
            self._emit(out, self._end_line() + c)
            self._new_line()
            return i + 1
        if c in "*_~`":
            k = _run_end(s, i)
            if k == n and not final:
                return _HOLD
            if c == "`":  # mid-line: a code span closed by the same run, or none
                return self._code_span(s, i, k, final, out)
            run = k - i
            after = s[k] if k < n else ""
            if c == "~" and run == 1:
                self._emit(out, c)
                return k
            key = (c, run)
            if _in_word(prev) and _in_word(after):
                if c == "*" and key in self._emphasis:
                    self._emphasis.discard(key)  # **무료**입니다: it closes
                    return k
                self._emit(out, s[i:k])  # 2*3, snake_case: not markup
                return k
            if (not prev or prev.isspace()) and after in (" ", "\t"):
                self._emit(out, s[i:k])  # "a * b": not markup
                return k
            if key in self._emphasis:
                self._emphasis.discard(key)
            else:
                self._emphasis.add(key)
            return k
        if c == "[":
            return self._bracket(s, i, final, out, image=False)
        if c == "!":
            if nxt == "[" and (not prev or prev.isspace()):
                return self._bracket(s, i + 1, final, out, image=True)
            # Not held at a segment end (French "génial !" would wait): an image
            # split between its "!" and "[" keeps the "!" and speaks its alt text.
            self._emit(out, c)
            return i + 1
        if c == "]":  # never spoken; "](" after a "[" starts a link destination
            if self._link_open:
                if not nxt and not final:
                    return _HOLD
                self._link_open -= 1
                if nxt == "(":
                    self._url_depth = 1
                    self._dest = ["("]
                    return i + 2
                if nxt == "[":  # [the guide][1]: the label is not spoken
                    m = _LABEL_RE.match(s, i + 1)
                    if m:
                        self._removed()
                        return m.end()
                    rest = s[i + 1 :]
                    if not final and len(rest) <= 66 and not _NL_RE.search(rest):
                        self._link_open += 1
                        return _HOLD
            self._removed()
            return i + 1
        if c == "\\":
            if not nxt:
                if not final:
                    return _HOLD
            elif nxt in _ASCII_PUNCT:
                self._emit(out, nxt)
                return i + 2
            self._emit(out, c)
            return i + 1
        if c == ":":
            before = s[max(0, i - 5) : i]
            if i < 5:
                before = (self._rawtail + before)[-5:]
            if _SCHEME_RE.search(before):
                if len(s) - i < 3 and not final and "://".startswith(s[i:]):
                    return _HOLD
                if s.startswith("://", i):
                    self._emit(out, "://")
                    self._bare_url = True
                    self._url_parens = 0
                    return i + 3
            self._emit(out, c)
            return i + 1
        if c == "\u200d":  # a joiner inside an emoji sequence, or in a script
            if not nxt and not final:
                return _HOLD
            if _EMOJI_ANY_RE.match(prev or " ") or _EMOJI_ANY_RE.match(nxt or " "):
                return i + 1
            if "\U0001f3fb" <= prev <= "\U0001f3ff":
                return i + 1
            self._emit(out, c)
            return i + 1
        if c == "#" or c == "*":  # a lone keycap base that is not one
            self._emit(out, c)
            return i + 1
        # a pictograph or an invisible emoji part
        self._removed()
        return i + 1

    def _bracket(
        self, s: str, i: int, final: bool, out: list[str], *, image: bool
    ) -> int:
        """s[i] == '[': a fault marker, a link, or a plain bracket."""
        n = len(s)
        start = i - 1 if image else i
        if s.startswith("[[", i) or (n - i < len(_FAULT_PREFIX)):
            rest = s[i : i + len(_FAULT_PREFIX)]
            if rest == _FAULT_PREFIX:
                m = _FAULT_RE.match(s, i)
                if m:
                    self._emit(out, s[start : m.end()])
                    return m.end()
                if not final and n - i < _FAULT_MAX and "]]" not in s[i:]:
                    return _HOLD
            elif _FAULT_PREFIX.startswith(rest) and not final:
                return _HOLD
        self._link_open += 1  # never spoken: the text is, at once
        self._removed()
        return i + 1


def _in_word(ch: str) -> bool:
    """A letter or digit of a script with spaces (CJK emphasis has none around)."""
    return ch.isalnum() and not _CJK_RE.match(ch)


# ---------------------------------------------------------------------- shaper
_WORD_MAX = 100  # no word is longer: a longer run (a hash, base64) is let out
# Gradium's inline tags. One that has begun waits until its ">" (never cut between
# two messages); a "<" that is no such tag within _TAG_MAX characters is text.
_TAG_NAMES = ("<break", "<flush")
_TAG_MAX = 48
_BREAK_RE = re.compile(r"<break\b[^<>\n]*>")  # needs a space before and after


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M"  # combining marks (Indic vowels...)


def _word_char(ch: str) -> bool:
    """A letter or digit of a script that separates its words (or a mark on one)."""
    return (ch.isalnum() or _is_mark(ch)) and not _CJK_RE.match(ch)


def _tag_start(text: str) -> int:
    """Where an unclosed Gradium tag begins at the end of text, or -1."""
    k = text.rfind("<", max(0, len(text) - _TAG_MAX))
    if k < 0 or ">" in text[k:] or "\n" in text[k:]:
        return -1
    rest = text[k:]
    for name in _TAG_NAMES:
        if name.startswith(rest) or (
            rest.startswith(name) and rest[len(name) : len(name) + 1] in " /\t"
        ):
            return k
    return -1


class TextShaper:
    """Per-request text pipeline: join segments, filter, never end inside a word.

    ``feed`` returns "" until the request has something speakable (nothing can be
    said before that, and a request of only formatting ends without a socket); the
    unspeakable text before it (e.g. a lone ``¿``) is sent with the first words.
    A trailing run of letters or digits is kept until the next segment (or
    ``finish``) shows where its word ends, so no message ends inside a word; after
    the first words, a trailing digit followed by ``.`` or ``,`` waits the same way
    (the joiner keeps it), so no number is cut; a Gradium tag that has begun waits
    for its ``>``, and ``<break .../>`` gets the spaces Gradium needs around it.
    ``speakable_since`` is when the first speakable text arrived, even if it was
    held (by the filter or as an unfinished word): TTFB counts from there.
    """

    def __init__(self, filter_markup: bool = True, clock=time.monotonic) -> None:
        self._joiner = SegmentJoiner()
        self._filter = MarkdownFilter() if filter_markup else None
        self._clock = clock
        self._lead: list[str] = []  # unspeakable text before the first words
        self._word: list[str] = []  # an unfinished word (or tag) at the end
        self._word_len = 0
        self._started = False
        self._space_next = False  # a <break .../> was sent last: a space must follow
        self._last_sent = " "  # the last character sent (none yet: as after a space)
        self.speakable_since: float | None = None

    def feed(self, segment: str) -> str:
        numbers = self._started  # the first words are never held for a number
        text = self._filter_text(self._joiner.join(segment, hold=numbers))
        out = self._release(self._hold_word(text, numbers))
        if self.speakable_since is None and (
            self._started
            or self._word
            or (self._filter is not None and self._filter.holds_speakable())
        ):
            self.speakable_since = self._clock()
        return out

    def finish(self) -> str:
        text = self._filter_text(self._joiner.finish())
        if self._filter is not None:
            text += self._filter.finish()
        text = "".join(self._word) + text
        self._word, self._word_len = [], 0
        if self._started:
            return self._spaced_tags(text)
        text, self._lead = "".join(self._lead) + text, []
        return self._spaced_tags(text.lstrip() if is_speakable(text) else text)

    def _filter_text(self, text: str) -> str:
        if self._filter is not None:
            return self._filter.feed(text)
        return text.replace(_SOFT, " ") if _SOFT in text else text

    def _hold_word(self, text: str, numbers: bool) -> str:
        """Everything but what waits for what follows: a trailing letter/digit run
        (``1,000`` and ``3.14`` are one), with ``numbers`` a trailing digit and
        ``.`` or ``,`` (``3.`` + ``14``), and a begun Gradium tag."""
        if not text:
            return ""
        if (
            self._word_len + len(text) <= _WORD_MAX
            and _word_char(text[0])
            and all(map(_word_char, text))
            and (not self._word or "<" not in self._word[0])
        ):
            self._word.append(text)  # the word goes on
            self._word_len += len(text)
            return ""
        full = "".join(self._word) + text if self._word else text
        n = len(full)
        k = n
        if numbers and n > 1 and full[-1] in ".," and full[-2].isdigit():
            k -= 1
        while True:
            while k > 0 and _word_char(full[k - 1]):
                k -= 1
            # 1,000 and 3.14 are one word
            if not (
                1 < k < n
                and full[k - 1] in ".,"
                and full[k - 2].isdigit()
                and full[k].isdigit()
            ):
                break
            k -= 1
        if n - k > _WORD_MAX:
            k = n
        if "<" in full[-_TAG_MAX:]:
            t = _tag_start(full)
            if t >= 0:
                k = min(k, t)
        rest = full[k:]
        self._word, self._word_len = ([rest], len(rest)) if rest else ([], 0)
        return full[:k]

    def _release(self, text: str) -> str:
        if self._started or not text:
            return self._spaced_tags(text)
        if not is_speakable(text):  # the lead so far is unspeakable too
            self._lead.append(text)
            return ""
        self._started = True
        text, self._lead = "".join(self._lead) + text, []
        return self._spaced_tags(text.lstrip())

    def _spaced_tags(self, text: str) -> str:
        """<break .../> with a space before and after (Gradium needs them)."""
        if not text:
            return ""
        if self._space_next:
            self._space_next = False
            if not text[0].isspace():
                text = " " + text
        if "<break" not in text:
            self._last_sent = text[-1]
            return text
        parts: list[str] = []
        k = 0
        for m in _BREAK_RE.finditer(text):
            before = text[k : m.start()]
            parts.append(before)
            if not (text[m.start() - 1] if m.start() else self._last_sent).isspace():
                parts.append(" ")
            parts.append(m.group())
            k = m.end()
            if k < len(text) and not text[k].isspace():
                parts.append(" ")
        parts.append(text[k:])
        if k == len(text) and k:
            self._space_next = True
        text = "".join(parts)
        self._last_sent = text[-1]
        return text
