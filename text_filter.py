"""What the voice says: join streamed segments, strip LLM markdown and emoji.

No TEN import. One ``TextShaper`` per request: ``feed(segment)`` returns the text
to send now, ``finish()`` what is still held at the end of the request.

* ``SegmentJoiner`` decides, at each segment boundary, whether a space goes
  between the previous segment and this one (Gradium concatenates ``text``
  messages as they are). Rule, from the last character before the boundary (L)
  and the first one after it (F):

  - whitespace on either side: nothing added (a segment's own spacing is kept);
  - letters or digits meeting letters or digits: nothing (``Hel`` + ``lo``): only a
    token stream sends bare word pieces, and it carries its own spaces;
  - CJK (Han, kana, CJK punctuation): nothing after or inside it (``。`` +
    ``今天``, ``我用`` + ``Python``); a Latin sentence end before it gets a space;
  - before closing or clause punctuation: nothing (``word`` + ``,`` / ``?`` / ``)``);
  - digit + ``.``/``,``/``:`` + digit: nothing (``3.`` + ``14``, ``10:`` + ``30``);
  - an apostrophe between letters: nothing (``don`` + ``'t``, ``l'`` + ``homme``);
  - ``]`` + ``(``: nothing (a markdown link split between its two halves);
  - after sentence or clause punctuation, a closing bracket or quote, or an emoji,
    before a word, an opening bracket or quote, a currency sign: a space
    (``Hola.`` + ``¿Qué``, ``He said:`` + ``"Stop."``, ``(aside)`` + ``Then``);
  - a letter or digit before an opening bracket, quote or currency sign: a space
    (``Total is`` + ``$5.``);
  - anything else (hyphens, slashes, operators): nothing.

  Quotes that open and close with the same mark (``"`` ``“`` ``»`` ...) are told
  apart by context: one followed by a letter opens, one after a non-space closes.
  Markdown delimiters at the boundary (``**``, ``_``, `````) are looked through.

* ``MarkdownFilter`` removes what must not be read aloud, streaming: emphasis
  delimiters, headings, list and task markers, blockquotes, rules, links (the
  text is spoken, the URL is not), inline code (spoken without backticks), fenced
  code blocks (dropped whole), emoji and pictographs. Bare URLs, numbers,
  punctuation, other scripts, Gradium's inline tags and the local server's
  ``[[fault:...]]`` markers pass through. It holds back only what it cannot decide
  yet (a ``*`` run at the end of a segment, a ``[`` until ``](`` or not, a line
  start that may be a marker), never more than that.
"""

from __future__ import annotations

import re
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
_CJK_CLOSE = set("。．，、！？：；」』）】〕》〉｝］〙〗〟・…ー")
_SENT = set(".!?…,;:‼⁉؟،؛۔।॥")
_CLOSE = set(")]}%>")
_OPEN = set("([{¿¡<#@")
_QUOTES = set("\"“”«»‹›‘’‚„'")
_APOSTROPHES = set("'’")
_MARKUP = set("*_~`")
_EMOJI_TAIL = re.compile(f"[{_EMOJI_PART}\u200d\U0001f3fb-\U0001f3ff]")


def _is_currency(ch: str) -> bool:
    return ch in "$€£¥₹₩₽¢₺₫₪฿₴₦"


# ---------------------------------------------------------------------- joiner
class SegmentJoiner:
    """Puts a space between two segments only where two sentences would touch."""

    def __init__(self) -> None:
        self._tail = ""  # the last characters of the text joined so far

    def join(self, segment: str) -> str:
        if not segment:
            return ""
        if self._tail and _needs_space(self._tail, segment):
            segment = " " + segment
        self._tail = (self._tail + segment)[-24:]
        return segment


def _last_context(tail: str) -> tuple[str, str]:
    """(char before L, L), looking through closing markdown delimiters."""
    end = len(tail)
    k = end
    while k > 0 and tail[k - 1] in _MARKUP:
        k -= 1
    if k < end:  # a trailing delimiter run
        if k == 0 or tail[k - 1].isspace():
            return "", " "  # it opens: what follows attaches to it
        end = k
    return (tail[end - 2] if end >= 2 else ""), tail[end - 1]


def _first_context(segment: str) -> tuple[str, str]:
    """(F, char after F), looking through opening markdown delimiters."""
    k = 0
    while k < len(segment) and segment[k] in _MARKUP:
        k += 1
    if k:
        if k == len(segment) or segment[k].isspace():
            return segment[0], ""  # a closing run: treated as closing punctuation
        segment = segment[k:]
    return segment[0], segment[1] if len(segment) > 1 else ""


def _kind_last(prev: str, ch: str) -> str:
    if _CJK_RE.match(ch):
        return "cjk"
    if ch.isalnum() or _is_mark(ch):
        return "word"
    if ch in _QUOTES:
        if ch in "„‚":
            return "open"
        if ch == "»" and prev.isspace():
            return "close"  # French « ... »
        return "close" if prev and not prev.isspace() else "open"
    if ch in _SENT:
        return "sent"
    if ch in _CLOSE:
        return "close"
    if ch in _OPEN or _is_currency(ch):
        return "open"
    if _PICT_RE.match(ch) or _EMOJI_TAIL.match(ch):
        return "close"
    return "other"


def _kind_first(ch: str, nxt: str) -> str:
    if ch in _CJK_CLOSE:
        return "close"
    if _CJK_RE.match(ch):
        return "cjk"
    if ch.isalnum() or _is_mark(ch):
        return "word"
    if ch in _QUOTES:
        if ch in "„‚" or (ch == "«" and nxt.isspace()):
            return "open"
        if nxt and (
            nxt.isalnum() or nxt in _OPEN or nxt in _QUOTES or _is_currency(nxt)
        ):
            return "open"
        return "close"
    if ch in _SENT or ch in _CLOSE or ch in _MARKUP:
        return "close"
    if ch == "!" and nxt == "[":
        return "open"  # a markdown image
    if ch in "-−" and nxt.isdigit():
        return "open"  # a minus sign
    if ch in _OPEN or _is_currency(ch):
        return "open"
    if _EMOJI_TAIL.match(ch):
        return "close"  # the rest of an emoji split across segments
    if _PICT_RE.match(ch):
        return "pict"
    return "other"


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M"  # combining marks (Indic vowels...)


def _needs_space(tail: str, segment: str) -> bool:
    prev, last = _last_context(tail)
    first, nxt = _first_context(segment)
    if last.isspace() or first.isspace():
        return False
    lk, fk = _kind_last(prev, last), _kind_first(first, nxt)
    if lk in ("open", "other", "cjk") or fk in ("close", "other"):
        return False
    if last == "]" and first == "(":
        return False  # a markdown link split between its halves
    if first in _APOSTROPHES and lk == "word":
        return False  # don + 't
    if last in _APOSTROPHES and prev.isalpha() and first.isalpha():
        return False  # l' + homme, rock'n' + roll
    if fk == "cjk":
        return lk == "sent"  # "Hello." + "你好"; never inside CJK text
    if lk == "word":
        return fk == "open"
    if lk == "sent":
        if last in ".,:" and prev.isdigit() and first.isdigit():
            return False  # 3.14, 1,000, 10:30
        return True
    if fk == "pict" and (_PICT_RE.match(last) or _EMOJI_TAIL.match(last)):
        return False  # emoji after emoji (or the rest of a ZWJ sequence)
    return True  # after closing punctuation or an emoji


# ---------------------------------------------------------------------- filter
_SPECIAL = re.compile(
    r"(?<![0-9A-Za-z])[0-9#*](?=\ufe0f|\u20e3|\Z)"  # a keycap, or maybe one
    f"|[*_~`\\[\\]\\\\\\n!:\u200d{_PICT}{_EMOJI_PART}]"
)
_FAULT_RE = re.compile(r"\[\[fault:[A-Za-z0-9_]+(?::[^\]]*)?\]\]")
_FAULT_PREFIX = "[[fault:"
_SCHEME_RE = re.compile(r"(?:https?|ftp|wss?)$", re.IGNORECASE)
_TERMINAL = set(".!?:;,…。！？：；，、")
_BULLETS = set("-*+•◦‣▪▸►")
_ASCII_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
_LINK_TEXT_MAX = 300
_FAULT_MAX = 200
_HOLD = -1


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
        self._last_out = ""
        self._drop_space = False  # spaces after a removed marker or emoji
        self._fence: tuple[str, int] | None = None
        self._fence_bol = False
        self._code = 0  # backtick run length of the open inline code span
        self._url_depth = 0  # inside a link's (url): parenthesis depth
        self._link_open = 0
        self._bare_url = False

    # ----------------------------------------------------------------- public
    def feed(self, text: str) -> str:
        if not text:
            return ""
        self._buf += text
        return self._run(final=False)

    def finish(self) -> str:
        out = self._run(final=True)
        if self._line_kind:
            out += self._end_line()
        return out

    # ------------------------------------------------------------------- loop
    def _run(self, final: bool) -> str:
        s = self._buf
        n = len(s)
        out: list[str] = []
        i = 0
        while i < n:
            if self._fence is not None:
                j = self._in_fence(s, i, final, out)
            elif self._url_depth:
                j = self._in_url(s, i)
            elif self._line_start:
                j = self._at_line_start(s, i, final)
            elif self._code:
                j = self._in_code(s, i, final, out)
            elif self._bare_url:
                m = _WS_RE.search(s, i)
                j = m.start() if m else n
                self._emit(out, s[i:j])
                if m:
                    self._bare_url = False
            else:
                j = self._inline(s, i, final, out)
            if j == _HOLD:
                break
            i = j
        if i:
            self._prev = s[i - 1]
            self._rawtail = (self._rawtail + s[:i])[-8:]
        self._buf = s[i:]
        return "".join(out)

    def _emit(self, out: list[str], text: str) -> None:
        if not text:
            return
        out.append(text)
        self._last_out = text[-1]
        visible = text.rstrip()
        if visible:
            self._last_vis = visible[-1]
            if not self._line_has_text and is_speakable(visible):
                self._line_has_text = True

    def _end_line(self) -> str:
        """A heading or list item without final punctuation gets a period."""
        kind, self._line_kind = self._line_kind, ""
        if kind and self._line_has_text and self._last_vis not in _TERMINAL:
            stop = "。" if _CJK_RE.match(self._last_vis) else "."
            self._last_vis = stop
            return stop
        return ""

    def _removed(self) -> None:
        """Something was removed: do not leave a double space behind it."""
        if not self._last_out or self._last_out.isspace():
            self._drop_space = True

    # ------------------------------------------------------------ line starts
    def _at_line_start(self, s: str, i: int, final: bool) -> int:
        n = len(s)
        j = i
        while j < n and s[j] in " \t":
            j += 1
        if j == n:
            if final:
                self._line_start = False
                return i
            return _HOLD
        c = s[j]
        if c == ">":  # blockquote: drop, and look at what follows on the line
            self._removed_marker()
            return j + 1
        k = j
        while k < n and s[k] == c:
            k += 1
        run = k - j
        if c in "`~" and run >= 1:
            if k == n and not final:
                return _HOLD
            if run >= 3:
                self._line_start = False
                self._fence, self._fence_bol = (c, run), False
                return k
        elif c == "#":
            if k == n and not final:
                return _HOLD
            if run <= 6 and (k == n or s[k] in " \t\n"):
                self._line_start = False
                self._line_kind = "heading"
                self._removed_marker()
                return k
        elif c in "-*_" or c in _BULLETS or c.isdigit():
            if c in "-*_":  # a thematic break: --- *** ___ (spaces allowed)
                m, count = j, 0
                while m < n and s[m] in (c, " ", "\t"):
                    count += s[m] == c
                    m += 1
                if m == n and not final:
                    return _HOLD
                if count >= 3 and (m == n or s[m] == "\n"):
                    self._line_start = False
                    return m
            marker_end = self._list_marker(s, j, final)
            if marker_end == _HOLD:
                return _HOLD
            if marker_end:
                self._line_start = False
                self._line_kind = "item"
                self._removed_marker()
                return marker_end
        self._line_start = False
        return i

    def _list_marker(self, s: str, j: int, final: bool) -> int:
        """End of a list marker (and task box) at s[j], 0 if none, or _HOLD."""
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
        while m < n and s[m] in " \t":
            m += 1
        box = s[m : m + 4]
        for candidate in ("[ ] ", "[x] ", "[X] "):
            if box == candidate:
                return m + 4
            if m + len(box) == n and candidate.startswith(box) and box and not final:
                return _HOLD
        return m

    def _removed_marker(self) -> None:
        self._drop_space = True

    # ------------------------------------------------------------- code, urls
    def _in_fence(self, s: str, i: int, final: bool, out: list[str]) -> int:
        n = len(s)
        assert self._fence is not None
        ch, length = self._fence
        if self._fence_bol:
            j = i
            while j < n and s[j] in " \t":
                j += 1
            k = j
            while k < n and s[k] == ch:
                k += 1
            if k == n and not final:
                return _HOLD
            if k - j >= length:
                m = k
                while m < n and s[m] in " \t":
                    m += 1
                if m == n and not final:
                    return _HOLD
                if m == n or s[m] == "\n":  # the closing fence
                    self._fence = None
                    self._line_start = True
                    if m < n:
                        self._emit(out, "\n")
                        return m + 1
                    return m
            self._fence_bol = False
        nl = s.find("\n", i)
        if nl < 0:
            return n  # code is never read aloud
        self._fence_bol = True
        return nl + 1

    def _in_url(self, s: str, i: int) -> int:
        n = len(s)
        j = i
        while j < n:
            c = s[j]
            if c == "(":
                self._url_depth += 1
            elif c == ")":
                self._url_depth -= 1
                if not self._url_depth:
                    return j + 1
            elif c == "\n":
                self._url_depth = 0
                return j
            j += 1
        return n

    def _in_code(self, s: str, i: int, final: bool, out: list[str]) -> int:
        n = len(s)
        m = _CODE_END_RE.search(s, i)
        if m is None:
            self._emit(out, s[i:])
            return n
        j = m.start()
        self._emit(out, s[i:j])
        if s[j] == "\n":
            self._code = 0  # an unclosed span ends with its line
            return j
        k = j
        while k < n and s[k] == "`":
            k += 1
        if k == n and not final:
            return _HOLD if j == i else j
        if k - j == self._code:
            self._code = 0
        return k

    # ----------------------------------------------------------------- inline
    def _inline(self, s: str, i: int, final: bool, out: list[str]) -> int:
        n = len(s)
        if self._drop_space:
            j = i
            while j < n and s[j] in " \t":
                j += 1
            if j == n:
                return n
            self._drop_space = False
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
        if c == "\n":
            self._emit(out, self._end_line() + "\n")
            self._line_start = True
            self._line_has_text = False
            self._link_open = 0
            self._drop_space = False
            return i + 1
        if c in "*_~`":
            k = i
            while k < n and s[k] == c:
                k += 1
            if k == n and not final:
                return _HOLD
            run = k - i
            after = s[k] if k < n else ""
            if c == "`":
                if run >= 3:
                    self._fence, self._fence_bol = ("`", run), False
                else:
                    self._code = run
                return k
            if c == "~" and run == 1:
                self._emit(out, c)
                return k
            if (_in_word(prev) and _in_word(after)) or (
                (not prev or prev.isspace()) and (not after or after.isspace())
            ):
                self._emit(out, s[i:k])  # 2*3, snake_case, "a * b": not markup
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
        if c == "]":
            if self._link_open:
                if not nxt and not final:
                    return _HOLD
                self._link_open -= 1
                if nxt == "(":
                    self._url_depth = 1
                    return i + 2
            self._emit(out, c)
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
            elif _FAULT_PREFIX.startswith(rest) and len(rest) > 1 and not final:
                return _HOLD
        j = i + 1
        while j < n and j - i <= _LINK_TEXT_MAX:
            c = s[j]
            if c == "]":
                if j + 1 == n and not final:
                    return _HOLD
                if j + 1 < n and s[j + 1] == "(":
                    self._link_open += 1
                    return i + 1  # drop "[" (and "!"): the text is spoken
                break
            if c in "[\n":
                break
            j += 1
        else:
            if j == n and not final:
                return _HOLD  # the link text so far: is a "](" coming?
        self._emit(out, s[start : i + 1])
        return i + 1


def _in_word(ch: str) -> bool:
    """A letter or digit of a script with spaces (CJK emphasis has none around)."""
    return ch.isalnum() and not _CJK_RE.match(ch)


_WS_RE = re.compile(r"\s")
_CODE_END_RE = re.compile(r"[`\n]")


# ---------------------------------------------------------------------- shaper
class TextShaper:
    """Per-request text pipeline: join segments, then (optionally) filter.

    ``feed`` returns "" until the request has something speakable (nothing can be
    said before that, and a request of only formatting ends without a socket); the
    unspeakable text before it (e.g. a lone ``¿``) is sent with the first words.
    """

    def __init__(self, filter_markup: bool = True) -> None:
        self._joiner = SegmentJoiner()
        self._filter = MarkdownFilter() if filter_markup else None
        self._lead = ""
        self._started = False

    def feed(self, segment: str) -> str:
        text = self._joiner.join(segment)
        if self._filter is not None:
            text = self._filter.feed(text)
        return self._release(text)

    def finish(self) -> str:
        text = self._filter.finish() if self._filter is not None else ""
        if self._started:
            return text
        text, self._lead = self._lead + text, ""
        return text.lstrip() if is_speakable(text) else text

    def _release(self, text: str) -> str:
        if self._started:
            return text
        self._lead += text
        if not is_speakable(self._lead):
            return ""
        self._started = True
        text, self._lead = self._lead.lstrip(), ""
        return text
