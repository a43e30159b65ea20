"""What the voice says: join streamed segments, strip LLM markdown and emoji.

No TEN import. One ``TextShaper`` per request: ``feed(segment)`` returns the text
to send now, ``finish()`` what is still held at the end of the request.

* ``SegmentJoiner`` concatenates segments as they are: the producers that feed a
  TTS node in TEN keep their own spaces (TEN's sentence splitter sends
  ``Visit example.`` + ``com now.``), and Gradium concatenates ``text`` messages.
  Nothing is added at a boundary with whitespace on either side, nor once the
  producer has shown it keeps its whitespace. For a producer that strips its
  segments, ``_separator`` decides from both sides of the boundary: a space after
  sentence-final ``.!?`` before an uppercase letter, an opening quote, ``¿¡``, a
  bracket or a caseless script (never after a single letter, inside dotted names,
  e-mails or URLs, before capitals after capitals, CamelCase, lowercase or digits,
  nor inside inline code); a space after ``,`` before a letter; a newline before a
  markdown block marker after a sentence end.

* ``MarkdownFilter`` removes what must not be read aloud, streaming: emphasis
  delimiters, headings, list and task markers, blockquotes, rules, links (the
  text is spoken, the URL is not), inline code (spoken without backticks), fenced
  code blocks (dropped whole), emoji and pictographs. Bare URLs, numbers,
  punctuation, other scripts, Gradium's inline tags and the local server's
  ``[[fault:...]]`` markers pass through. Brackets are never spoken; a mid-line
  backtick run opens a code span closed by the same run; a link destination is
  dropped at its ``)`` and given back if whitespace or the end shows it was none.
  It holds back only what it cannot decide yet (a ``*`` run at the end of a
  segment, a ``]`` until ``(`` or not, a destination, a line start that may be a
  marker), carries its state, and never re-reads held text.
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
_SENT_END = set(".!?…")
_OPEN_QUOTES = "\"“«‘„‹»'"
_BLOCK_AFTER = set(".!?:。！？：")
_DOTTED = set(".@/:")  # in a word: a dotted name, an e-mail, a URL, a time
_BLOCK_RE = re.compile(r"(?:#{1,6}\s|[-*+•]\s|\d{1,3}[.)]\s|>\s|```|~~~|---)")
_MARKER_END_RE = re.compile(r"\n[ \t]*\d{1,3}[.)]$")
_ITEM_ALONE_RE = re.compile(r"(\d{1,3})[.)]")  # "2." alone: an item, or a decimal
_ITEM_RE = re.compile(r"(?:^|\n)[ \t]*(\d{1,3})[.)](?=\s|$)")
_BACKTICKS_RE = re.compile(r"`+")
_TAIL = 64
_ABBREV_RE = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # e.g / i.e / a.m (the last . cut)


class SegmentJoiner:
    """Concatenates segments as they are; adds a space (or a newline) only where a
    producer that strips its segments ran two sentences together.

    A producer that has shown it keeps its own spaces (a segment began or ended
    with whitespace) never gets anything added: its text is already the text.
    """

    def __init__(self) -> None:
        self._tail = ""  # the last characters of the text joined so far
        self._spaced = False  # the producer keeps its own whitespace
        self._code = 0  # backtick run length of the open code span or fence
        self._ticks = 0  # a backtick run at the end of the tail, not counted yet
        self._item = -1  # the number of the last numbered list item seen

    def join(self, segment: str) -> str:
        if not segment:
            return ""
        tail = self._tail
        if tail and (tail[-1].isspace() or segment[0].isspace()):
            self._spaced = True
        elif tail and not self._spaced and not self._code_at_boundary(segment):
            m = _ITEM_ALONE_RE.fullmatch(segment)
            n = int(m.group(1)) if m else -1
            if tail[-1] in _BLOCK_AFTER and (
                n == self._item + 1 or (n == 1 and tail[-1] in ":：")
            ):
                segment = "\n" + segment  # the next item of a numbered list
            else:
                segment = _separator(tail, segment) + segment
        self._count_backticks(segment)
        for m in _ITEM_RE.finditer(
            segment if tail[-1:] in ("", "\n") else "x" + segment
        ):
            self._item = int(m.group(1))
        self._tail = (tail + segment)[-_TAIL:]
        return segment

    def _code_at_boundary(self, segment: str) -> bool:
        """Whether the boundary is inside inline code or a fence."""
        if self._ticks and not segment.startswith("`"):
            return self._code != self._ticks  # the pending run opens, or is code
        return self._code != 0

    def _count_backticks(self, segment: str) -> None:
        if self._ticks and not segment.startswith("`"):
            self._toggle(self._ticks)
            self._ticks = 0
        end = len(segment)
        for m in _BACKTICKS_RE.finditer(segment):
            run = m.end() - m.start()
            if m.start() == 0:
                run, self._ticks = run + self._ticks, 0
            if m.end() == end:
                self._ticks = run  # it may go on in the next segment
                return
            self._toggle(run)

    def _toggle(self, run: int) -> None:
        if not self._code:
            self._code = run
        elif run == self._code:
            self._code = 0


def _separator(tail: str, segment: str) -> str:
    """What goes between two segments that touch without whitespace."""
    if tail[-1] in _BLOCK_AFTER and not tail[-2:-1].isdigit():
        if _BLOCK_RE.match(segment):
            return "\n"  # a heading, list item, quote, rule or fence begins a line
    if _MARKER_END_RE.search(tail):
        return " "  # "1." + "Open": a list marker alone on its line needs its space
    t = tail.rstrip("*_~`")
    if not t or (len(t) < len(tail) and t[-1].isspace()):
        return ""  # an opening delimiter run: what follows attaches to it
    last = t[-1]
    f = segment.lstrip("*_~")
    if not f or f[0].isspace():
        return ""
    first = f[0]
    nxt = f[1] if len(f) > 1 else ""
    opens = first in "¿¡" or (first in _OPEN_QUOTES and (nxt.isalpha() or nxt in "¿¡"))
    if last == ",":  # a clause cut by a sentence splitter, then stripped
        is_word = first.isalpha() and not _CJK_RE.match(first)
        return " " if is_word or opens else ""  # never "1," + "000"
    if last not in _SENT_END:
        return ""
    word = t[:-1].rsplit(None, 1)[-1] if t[:-1].strip() else ""
    if len(word) == len(t) - 1 and len(t) >= _TAIL:
        return ""  # a token longer than we keep: a URL or some code
    word = word.lstrip("*_~`\"“«‘„'([¿¡")
    m = re.match(r"\S*", f)
    assert m is not None
    f_word = m.group()
    inner = f_word.rstrip(".,;:!?)")
    # The first word has more text after it, or ends a clause: a sentence.
    followed = m.end() < len(f) or f_word[-1] in ",;!?"
    if any(c in _DOTTED for c in inner):
        return ""  # the rest of an e-mail or a URL: no sentence starts so
    if first.islower() and followed and _ABBREV_RE.fullmatch(word):
        return " "  # e.g. this, a.m. and
    if not (
        first.isupper()
        or (
            first.isalpha()
            and first.lower() == first.upper()
            and not _CJK_RE.match(first)
        )
        or opens
        or first in "(["
        or (first == "<" and nxt.isalpha())  # a Gradium tag: <break time="1s" />
        or _PICT_RE.match(first)
    ):
        return ""  # a lowercase letter, a digit, closing punctuation: one word
    if len(word) == 1 and word.isalpha() and len(inner) < 2:
        return ""  # U.S., J.K. (but "M." + "Dupont sera là." is two words)
    if any(c in _DOTTED for c in word) and not followed:
        return ""  # inside a dotted name, an e-mail or a URL
    letters = "".join(c for c in inner if c.isalpha())
    if len(letters) >= 2 and letters.isupper():
        caps_before = "".join(c for c in word if c.isalpha())
        if not followed or (len(caps_before) >= 2 and caps_before.isupper()):
            return ""  # ASP.NET, System.IO
    if re.search(r"[a-z][A-Z]", inner):
        return ""  # Console.WriteLine
    return " "


# ---------------------------------------------------------------------- filter
_SPECIAL = re.compile(
    r"(?<![0-9A-Za-z])[0-9#*](?=\ufe0f|\u20e3|\Z)"  # a keycap, or maybe one
    f"|[*_~`\\[\\]\\\\\\n!:\u200d{_PICT}{_EMOJI_PART}]"
)
_FAULT_RE = re.compile(r"\[\[fault:[A-Za-z0-9_]+(?::[^\]]*)?\]\]")
_FAULT_PREFIX = "[[fault:"
_SCHEME_RE = re.compile(r"(?:https?|ftp|wss?)$", re.IGNORECASE)
_TERMINAL = set(".!?:;,…。！？：；，、")
_CLOSERS = set('"”’»«“」』）)]')  # "Halt!“ ends with its "!"
_BULLETS = set("-*+•◦‣▪▸►")
_ASCII_PUNCT = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")
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
        self._vis_before = ""  # the character emitted before it
        self._last_out = ""
        self._drop_space = False  # spaces after a removed marker or emoji
        self._fence: tuple[str, int] | None = None
        self._fence_bol = False
        self._code = 0  # backtick run length of the open inline code span
        self._url_depth = 0  # inside a link's (destination): parenthesis depth
        self._url_gap = ""  # after the destination: "" / " " (spaces) / '"' (title)
        self._dest: list[str] = []  # the raw "(destination", given back if no link
        self._link_open = 0  # "[" seen on this line (their text is spoken)
        self._run_char = ""  # self._buf is a run of this one character
        self._more: list[str] = []  # more of that run, not yet added to self._buf
        self._bare_url = False

    # ----------------------------------------------------------------- public
    def feed(self, text: str) -> str:
        if not text:
            return ""
        if self._run_char and not text.strip(self._run_char):
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
        b = self._buf
        self._run_char = b[0] if b and b.count(b[0]) == len(b) else ""
        return "".join(out)

    def _emit(self, out: list[str], text: str) -> None:
        if not text:
            return
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
                if c == "\n":
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
            elif c == "\n":
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

    def _in_code(self, s: str, i: int, final: bool, out: list[str]) -> int:
        n = len(s)
        m = _CODE_END_RE.search(s, i)
        if m is None:
            self._emit(out, s[i:])
            return n
        j = m.start()
        self._emit(out, s[i:j])
        if s[j] == "\n":
            if (s[j - 1] if j else self._prev) == "\n":
                self._code = 0  # a blank line ends the paragraph: no span
                self._line_start = True
            self._emit(out, "\n")
            return j + 1
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
            if c == "`":  # mid-line, any run opens a code span closed by the same
                self._code = run
                return k
            if c == "~" and run == 1:
                self._emit(out, c)
                return k
            if (_in_word(prev) and _in_word(after)) or (
                (not prev or prev.isspace()) and after in (" ", "\t")
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
        if c == "]":  # never spoken; "](" after a "[" starts a link destination
            if self._link_open:
                if not nxt and not final:
                    return _HOLD
                self._link_open -= 1
                if nxt == "(":
                    self._url_depth = 1
                    self._dest = ["("]
                    return i + 2
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


_WS_RE = re.compile(r"\s")
_CODE_END_RE = re.compile(r"[`\n]")


# ---------------------------------------------------------------------- shaper
_WORD_MAX = 100  # no word is longer: a longer run (a hash, base64) is let out


def _is_mark(ch: str) -> bool:
    return unicodedata.category(ch)[0] == "M"  # combining marks (Indic vowels...)


def _word_char(ch: str) -> bool:
    """A letter or digit of a script that separates its words (or a mark on one)."""
    return (ch.isalnum() or _is_mark(ch)) and not _CJK_RE.match(ch)


class TextShaper:
    """Per-request text pipeline: join segments, filter, never end inside a word.

    ``feed`` returns "" until the request has something speakable (nothing can be
    said before that, and a request of only formatting ends without a socket); the
    unspeakable text before it (e.g. a lone ``¿``) is sent with the first words.
    A trailing run of letters or digits is kept until the next segment (or
    ``finish``) shows where its word ends, so no message ends inside a word.
    ``speakable_since`` is when the first speakable text arrived, even if it was
    held (by the filter or as an unfinished word): TTFB counts from there.
    """

    def __init__(self, filter_markup: bool = True, clock=time.monotonic) -> None:
        self._joiner = SegmentJoiner()
        self._filter = MarkdownFilter() if filter_markup else None
        self._clock = clock
        self._lead: list[str] = []  # unspeakable text before the first words
        self._word: list[str] = []  # an unfinished word at the end of the output
        self._word_len = 0
        self._started = False
        self.speakable_since: float | None = None

    def feed(self, segment: str) -> str:
        text = self._joiner.join(segment)
        if self._filter is not None:
            text = self._filter.feed(text)
        out = self._release(self._hold_word(text))
        if self.speakable_since is None and (
            self._started
            or self._word
            or (self._filter is not None and self._filter.holds_speakable())
        ):
            self.speakable_since = self._clock()
        return out

    def finish(self) -> str:
        text = self._filter.finish() if self._filter is not None else ""
        text = "".join(self._word) + text
        self._word, self._word_len = [], 0
        if self._started:
            return text
        text, self._lead = "".join(self._lead) + text, []
        return text.lstrip() if is_speakable(text) else text

    def _hold_word(self, text: str) -> str:
        """Everything but a trailing letter/digit run, which waits for its end."""
        if not text:
            return ""
        k = len(text)
        while k > 0 and _word_char(text[k - 1]):
            k -= 1
        if k == 0 and self._word_len + len(text) <= _WORD_MAX:
            self._word.append(text)  # the word goes on
            self._word_len += len(text)
            return ""
        out = "".join(self._word) + text[:k]
        rest = text[k:]
        if len(rest) > _WORD_MAX:
            out, rest = out + rest, ""
        self._word, self._word_len = ([rest], len(rest)) if rest else ([], 0)
        return out

    def _release(self, text: str) -> str:
        if self._started or not text:
            return text
        if not is_speakable(text):  # the lead so far is unspeakable too
            self._lead.append(text)
            return ""
        self._started = True
        text, self._lead = "".join(self._lead) + text, []
        return text.lstrip()
