"""The two voices: a deterministic synthetic one and eSpeak NG (task §2).

Both return a :class:`Rendering` (int16 samples at the requested rate plus word
spans in samples). Rendering is CPU work; callers run it in a worker thread
(``asyncio.to_thread``), never on the event loop.
"""

from __future__ import annotations

import bisect
import ctypes
import math
import re
import threading
import zlib
from array import array
from dataclasses import dataclass, field

from .textparse import WORD_RE, is_speakable

# --- common ------------------------------------------------------------------------


@dataclass
class Rendering:
    samples: array = field(default_factory=lambda: array("h"))
    # (word, start_sample, stop_sample), relative to the start of ``samples``
    words: list[tuple[str, int, int]] = field(default_factory=list)
    # What eSpeak said, in IPA (empty for the synthetic voice).
    phonemes: str = ""

    def extend(self, other: Rendering) -> None:
        offset = len(self.samples)
        self.samples.extend(other.samples)
        self.words.extend((w, a + offset, b + offset) for w, a, b in other.words)
        self.phonemes = " ".join(p for p in (self.phonemes, other.phonemes) if p)


def silence(seconds: float, rate: int) -> Rendering:
    return Rendering(array("h", bytes(2 * round(seconds * rate))))


def resample_linear(samples: array, src_rate: int, dst_rate: int) -> array:
    """Linear-interpolation resampler (int16 in, int16 out)."""
    if src_rate == dst_rate or not samples:
        return array("h", samples)
    n_in = len(samples)
    n_out = max(1, round(n_in * dst_rate / src_rate))
    step = src_rate / dst_rate
    last = n_in - 1
    out = array("h", bytes(2 * n_out))
    for i in range(n_out):
        x = i * step
        j = int(x)
        if j >= last:
            out[i] = samples[last]
            continue
        frac = x - j
        a = samples[j]
        out[i] = int(a + (samples[j + 1] - a) * frac)
    return out


# --- speaking rate (json_config.padding_bonus) ---------------------------------------

PADDING_BONUS_RANGE = (-4.0, 4.0)
DURATION_PER_BONUS = 0.15  # reference §2.1: +-2 is about +-30 % duration


def duration_factor(padding_bonus: float) -> float:
    """How much longer (> 1) or shorter (< 1) speech gets at ``padding_bonus``.

    Negative is faster, as with Gradium: -2 gives 0.7 of the duration, +2 gives 1.3
    (-4: 0.4, +4: 1.6). Both voices scale their timing by this factor.
    """
    return 1.0 + DURATION_PER_BONUS * padding_bonus


# --- numbers in the language of rewrite_rules ----------------------------------------

LANGUAGES = ("en", "fr", "de", "es", "pt")  # Gradium's rewrite_rules aliases
_NUMBER_RULE = re.compile(r"Number(En|Fr|De|Es|Pt)")


def number_language(rewrite_rules: str | None) -> str | None:
    """The language whose rules read numbers: the first language alias or
    ``NumberXx`` rule in ``rewrite_rules``; None without one (no rule: the voice
    reads digits its own way, English for eSpeak's en-us)."""
    for name in (rewrite_rules or "").split(","):
        name = name.strip()
        if name in LANGUAGES:
            return name
        match = _NUMBER_RULE.fullmatch(name)
        if match:
            return match.group(1).lower()
    return None


def has_digit(token: str) -> bool:
    return any(ch.isdigit() for ch in token)


# --- synthetic voice -----------------------------------------------------------------

CHAR_S = 0.065  # seconds of tone per character of the token
GAP_S = 0.035  # silence after each word
AMPLITUDE = 8000
FADE_S = 0.005


def synthetic_word_pitch(word: str) -> float:
    """Pitch (Hz) of a word's tone: 180-599 Hz, derived from the word's bytes."""
    return 180.0 + zlib.crc32(word.encode("utf-8")) % 420


def synthesize_synthetic(
    text: str, sample_rate: int, padding_bonus: float = 0.0
) -> Rendering:
    """Deterministic voice: a pure function of (text, sample_rate, padding_bonus).

    Each whitespace-separated token with a letter or digit becomes a sine burst of
    ``CHAR_S * len(token)`` seconds (5 ms fades) at :func:`synthetic_word_pitch`,
    followed by ``GAP_S`` of silence; both are scaled by
    ``duration_factor(padding_bonus)``; its word span is the burst. Other tokens
    (punctuation only) are silent and have no span. Because tokens render
    independently, synthesizing a text in several chunks split at whitespace gives
    the same samples as synthesizing it at once.
    """
    out = Rendering()
    factor = duration_factor(padding_bonus)
    gap = round(GAP_S * factor * sample_rate)
    fade = max(1, round(FADE_S * sample_rate))
    for token in WORD_RE.findall(text):
        if not is_speakable(token):
            continue
        n = round(CHAR_S * factor * len(token) * sample_rate)
        w = 2.0 * math.pi * synthetic_word_pitch(token) / sample_rate
        start = len(out.samples)
        tone = array(
            "h",
            (
                int(AMPLITUDE * min(1.0, i / fade, (n - i) / fade) * math.sin(w * i))
                for i in range(n)
            ),
        )
        out.samples.extend(tone)
        out.words.append((token, start, start + n))
        out.samples.extend(array("h", bytes(2 * gap)))
    return out


# --- eSpeak NG -----------------------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_CHARS_UTF8 = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_ESPEAK_RATE = 1  # espeak_PARAMETER espeakRATE (words per minute, 80-450)
_PHONEMES_IPA = 2  # espeak_TextToPhonemes phonememode: IPA
# eSpeak NG voice of each rewrite_rules language; en-us is the server's voice.
ESPEAK_VOICES = {"en": b"en-us", "fr": b"fr", "de": b"de", "es": b"es", "pt": b"pt"}


class _EspeakEvent(ctypes.Structure):
    # espeak_EVENT from speak_lib.h
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # sample index at the native rate
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int,
    ctypes.POINTER(ctypes.c_short),
    ctypes.c_int,
    ctypes.POINTER(_EspeakEvent),
)


class EspeakEngine:
    """Process-wide eSpeak NG (libespeak-ng is global state and not thread-safe:
    every call is serialized by ``_lock``)."""

    _instance: EspeakEngine | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        import espeakng_loader  # noqa: PLC0415 - optional dependency

        self._lock = threading.Lock()
        self._lib = ctypes.cdll.LoadLibrary(espeakng_loader.get_library_path())
        data = espeakng_loader.get_data_path().encode()
        rate = self._lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data, 0)
        if rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed: {rate}")
        self.native_rate = int(rate)
        self._samples = array("h")
        self._events: list[tuple[int, int]] = []  # (text_position, sample)
        self._callback = _CALLBACK(self._on_audio)  # keep a reference
        self._lib.espeak_SetSynthCallback(self._callback)
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        self._lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        self._lib.espeak_TextToPhonemes.argtypes = [
            ctypes.POINTER(ctypes.c_void_p),
            ctypes.c_int,
            ctypes.c_int,
        ]
        # Languages whose voice this eSpeak has (en-us is required).
        self.languages = {
            language
            for language, name in ESPEAK_VOICES.items()
            if self._lib.espeak_SetVoiceByName(name) == 0
        }
        if "en" not in self.languages:
            raise RuntimeError("espeak: voice en-us not found")
        self._lib.espeak_SetVoiceByName(ESPEAK_VOICES["en"])
        # Speaking rate (words per minute) of the voice: padding_bonus scales it.
        self.default_wpm = int(self._lib.espeak_GetParameter(_ESPEAK_RATE, 0)) or 175

    @classmethod
    def get(cls) -> EspeakEngine:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def _on_audio(self, wav, n, events) -> int:
        if wav and n > 0:
            self._samples.extend(wav[:n])
        if events:
            i = 0
            while events[i].type != _EVENT_LIST_TERMINATED:
                if events[i].type == _EVENT_WORD:
                    self._events.append((events[i].text_position, events[i].sample))
                i += 1
        return 0

    def wpm_for(self, padding_bonus: float) -> int:
        """eSpeak's rate for ``padding_bonus``: the duration scales by
        ``duration_factor``, so the words per minute scale by its inverse."""
        wpm = round(self.default_wpm / duration_factor(padding_bonus))
        return min(450, max(80, wpm))

    def synthesize(
        self,
        text: str,
        sample_rate: int,
        padding_bonus: float = 0.0,
        numbers: str | None = None,
    ) -> Rendering:
        """Speak ``text`` (en-us) and return samples at ``sample_rate``, at the
        speaking rate ``padding_bonus`` asks for (negative is faster).

        ``numbers`` (a language of :func:`number_language`) stands in for
        Gradium's rewrite rules: tokens with a digit are spoken by that
        language's eSpeak voice (``123`` is "cent vingt-trois" with ``fr``), the
        rest by en-us, each run as its own utterance.

        Word spans come from eSpeak's word events (mapped to our whitespace tokens by
        character position); a token without an event is skipped, and if no event
        maps at all the duration is split over the tokens in proportion to length.
        """
        tokens = WORD_RE.findall(text)
        out = Rendering()
        if not tokens:
            return out
        if numbers in (None, "en") or numbers not in self.languages:
            runs = [("en", tokens)]
        else:
            runs = []
            for token in tokens:
                language = numbers if has_digit(token) else "en"
                if runs and runs[-1][0] == language:
                    runs[-1][1].append(token)
                else:
                    runs.append((language, [token]))
        for language, run in runs:
            out.extend(self._speak(" ".join(run), sample_rate, padding_bonus, language))
        return out

    def _speak(
        self, text: str, sample_rate: int, padding_bonus: float, language: str
    ) -> Rendering:
        """One utterance of ``text`` by ``language``'s voice (the rate: en-us's
        words per minute scaled by ``padding_bonus``), with its IPA phonemes."""
        data = text.encode("utf-8")
        with self._lock:
            self._samples = array("h")
            self._events = []
            self._lib.espeak_SetVoiceByName(ESPEAK_VOICES[language])
            self._lib.espeak_SetParameter(_ESPEAK_RATE, self.wpm_for(padding_bonus), 0)
            self._lib.espeak_Synth(
                data, len(data) + 1, 0, 0, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            native, events = self._samples, self._events
            phonemes = self._phonemes(data)
        samples = resample_linear(native, self.native_rate, sample_rate)
        scale = len(samples) / len(native) if native else 0.0
        spans = _word_spans(text, events, len(native))
        return Rendering(
            samples,
            [(w, round(a * scale), round(b * scale)) for w, a, b in spans],
            phonemes,
        )

    def _phonemes(self, data: bytes) -> str:
        """IPA of ``data`` by the current voice (call with ``_lock`` held)."""
        buffer = ctypes.create_string_buffer(data)
        pointer = ctypes.c_void_p(ctypes.addressof(buffer))
        clauses = []
        for _ in range(len(data) + 1):  # each call consumes one clause at least
            if not pointer.value:
                break
            clause = self._lib.espeak_TextToPhonemes(
                ctypes.byref(pointer), _ESPEAK_CHARS_UTF8, _PHONEMES_IPA
            )
            if clause:
                clauses.append(clause.decode("utf-8", "replace"))
        return " ".join(clauses)


def _word_spans(
    text: str, events: list[tuple[int, int]], total: int
) -> list[tuple[str, int, int]]:
    """Word spans from eSpeak word events.

    eSpeak sometimes emits one event for several words (e.g. "from the"), so a token
    without an event shares the interval of the preceding token that has one, split
    in proportion to length. With no usable event at all the whole utterance is split
    that way.
    """
    tokens = [(m.start(), m.end(), m.group()) for m in WORD_RE.finditer(text)]
    starts_chars = [t[0] for t in tokens]
    anchor: dict[int, int] = {}
    for pos, sample in events:
        idx = bisect.bisect_right(starts_chars, pos - 1) - 1
        if 0 <= idx < len(tokens) and pos - 1 < tokens[idx][1]:
            anchor.setdefault(idx, min(max(sample, 0), total))
    speakable = [i for i, t in enumerate(tokens) if is_speakable(t[2])]
    # groups: (start_sample, [token indices]); a token without an event joins the
    # group before it (tokens before the first event join the first group).
    groups: list[tuple[int, list[int]]] = []
    for i in speakable:
        if i in anchor and (not groups or anchor[i] > groups[-1][0]):
            groups.append((anchor[i], [i]))
        elif groups:
            groups[-1][1].append(i)
        else:
            groups.append((0, [i]))
    spans: list[tuple[str, int, int]] = []
    for g, (start, members) in enumerate(groups):
        stop = groups[g + 1][0] if g + 1 < len(groups) else total
        chars = sum(len(tokens[i][2]) for i in members)
        pos = start
        for k, i in enumerate(members):
            n = round((stop - start) * len(tokens[i][2]) / chars)
            end = stop if k == len(members) - 1 else min(stop, pos + n)
            spans.append((tokens[i][2], pos, max(pos, end)))
            pos = end
    return spans


def synthesize(
    engine: str,
    text: str,
    sample_rate: int,
    padding_bonus: float = 0.0,
    numbers: str | None = None,
) -> Rendering:
    """``numbers``: the language of the request's number rules (eSpeak only; the
    synthetic voice has no language)."""
    if engine == "espeak":
        return EspeakEngine.get().synthesize(text, sample_rate, padding_bonus, numbers)
    return synthesize_synthetic(text, sample_rate, padding_bonus)
