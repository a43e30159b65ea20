"""What the voice says, for generated answers (issue 26): property-based tests.

A generator builds an LLM answer and its spoken form together, from the
constructs LLMs emit: paragraphs in English, French, German, Spanish and
Portuguese with numbers, decimals, versions, times, abbreviations, URLs, e-mails,
paths and dotted names; headings, lists, quotes, fences, inline code, emphasis,
links (inline, reference, bare URLs), tables and emoji; other scripts, passed
through. Each answer is cut as each producer cuts it (TEN's sentence splitter,
tokens with their spaces, stripped sentences, random cuts) and fed to a
``TextShaper``. Checked:

* the letters and digits Gradium hears are those of the spoken form, in order;
* for producers that keep their spaces, the text does not depend on the cuts;
* no message ends inside a word, nor inside a number (but the first words,
  which are never held);
* what is held stays bounded, and is all sent at ``text_input_end``.

CI runs a bounded, derandomized profile (``ci``). A longer run:
``TEXT_PROPERTIES=long bash scripts/test.sh tests/test_text_properties.py``
(``TEXT_PROPERTIES_EXAMPLES`` sets the number of examples). Every failure such
a run found is kept in ``FOUND`` below.
"""

from __future__ import annotations

import os
import re

import pytest
from harness import ext_module
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from text_producers import stripped_sentences, ten_splitter, token_stream

TextShaper = ext_module("text_filter").TextShaper

settings.register_profile(
    "text_properties_ci",
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "text_properties_long",
    max_examples=int(os.environ.get("TEXT_PROPERTIES_EXAMPLES", "5000")),
    derandomize=False,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = settings.get_profile(
    "text_properties_" + os.environ.get("TEXT_PROPERTIES", "ci")
)

HELD_MAX = 300  # characters held back at any time (a code span is the longest)

# ------------------------------------------------------------------ vocabulary
# (word, spoken): most words are spoken as written.
WORDS = {
    "en": "the app opens your file and we check every setting before it runs "
    "today with care so you can start again later".split(),
    "fr": "le fichier est prêt et nous vérifions chaque réglage avant de "
    "commencer aujourd'hui à la maison où il fait très beau".split(),
    "de": "die Straßenbahn fährt um acht Uhr und wir prüfen jede Einstellung "
    "bevor es losgeht heute über den Fluss für alle".split(),
    "es": "el archivo está listo y revisamos cada ajuste antes de empezar hoy "
    "en la ciudad mañana también señor niño".split(),
    "pt": "o arquivo está pronto e verificamos cada ajuste antes de começar "
    "hoje na cidade amanhã também coração não".split(),
}
# Tokens that live inside a sentence: (as written, as spoken).
TOKENS = {
    "en": [
        "1,000",
        "3.14",
        "$5.99",
        "15%",
        "10:30",
        "9 a.m.",
        "e.g. this",
        "Dr. Smith",
    ],
    "fr": ["1 000", "3,5", "10 h 30", "5 €", "M. Dupont", "p. ex. ceci"],
    "de": ["1.000", "3,5", "10:30 Uhr", "z.B. das", "Dr. Müller", "ca. 11"],
    "es": ["1.000", "3,5", "10:30", "5 €", "Sr. García", "p. ej. esto"],
    "pt": ["1.000", "3,5", "10h30", "R$ 5,99", "Sr. Silva", "p. ex. isto"],
}
COMMON = [
    "version 2.5.1",
    "Node.js",
    "os.path",
    "nn.Module",
    "Console.WriteLine",
    "System.IO",
    "ASP.NET",
    "config.yaml",
    "index.html",
    "192.168.1.1",
    "john.doe@example.com",
    "/usr/local/bin",
    "src/main.py",
    "https://example.com",
    "https://www.google.com/search?q=a.b",
    "https://x.io/a_(b)",
    "U.S.",
]
OPENERS = {"en": "", "fr": "", "de": "", "es": "", "pt": ""}
OTHER_SCRIPTS = [
    "你好，世界。今天天气很好。",
    "こんにちは。元気ですか？",
    "안녕하세요. 반갑습니다.",
    "Привет, мир. Как дела?",
    "مرحبا بالعالم.",
    "Καλημέρα κόσμε.",
]
EMOJI = ["😊", "🎉", "👍🏽", "🇫🇷", "❤️", "✅", "👨\u200d👩\u200d👧"]
LINK_URLS = ["https://example.com/guide", "https://x.io/a_(b)", "https://a.io/x?y=1"]


@st.composite
def word_run(draw, lang: str) -> tuple[str, str]:
    words = draw(st.lists(st.sampled_from(WORDS[lang]), min_size=1, max_size=5))
    text = " ".join(words)
    return text, text


@st.composite
def inline(draw, lang: str) -> tuple[str, str]:
    """One piece of a sentence: words, a token, or a marked-up piece."""
    kind = draw(
        st.sampled_from(
            ["words"] * 6
            + ["token", "common", "bold", "italic", "underscore", "strike", "code"]
            + ["link", "reflink", "emoji", "tag"]
        )
    )
    text, spoken = draw(word_run(lang))
    if kind == "token":
        t = draw(st.sampled_from(TOKENS[lang]))
        return t, t
    if kind == "common":
        t = draw(st.sampled_from(COMMON))
        return t, t
    if kind == "bold":
        return f"**{text}**", spoken
    if kind == "italic":
        return f"*{text}*", spoken
    if kind == "underscore":
        return f"_{text}_", spoken
    if kind == "strike":
        return f"~~{text}~~", spoken
    if kind == "code":
        code = draw(
            st.sampled_from(["npm install", "config.yaml", "x = 3.5", "ls -la"])
        )
        return f"`{code}`", code
    if kind == "link":
        url = draw(st.sampled_from(LINK_URLS))
        return f"[{text}]({url})", spoken
    if kind == "reflink":
        return f"[{text}][{draw(st.sampled_from(['1', '2', 'docs']))}]", spoken
    if kind == "emoji":
        return draw(st.sampled_from(EMOJI)), ""
    # Gradium's tags, with the spaces the app writes around them
    return draw(st.sampled_from(['<break time="1.5s" />', "<flush>"])), ""


@st.composite
def sentence(draw, lang: str) -> tuple[str, str]:
    parts = draw(st.lists(inline(lang), min_size=1, max_size=4))
    text = " ".join(p for p, _ in parts)
    spoken = " ".join(s for _, s in parts)
    first = text[:1]
    if text.split(" ", 1)[0] in WORDS[lang]:  # a capital, as a sentence starts
        text, spoken = first.upper() + text[1:], spoken[:1].upper() + spoken[1:]
    end = draw(st.sampled_from([".", ".", ".", "!", "?", ":", ","]))
    if lang == "es" and end == "?":
        text, spoken = "¿" + text, "¿" + spoken
    return text + end, spoken + end


@st.composite
def paragraph(draw) -> tuple[str, str]:
    lang = draw(st.sampled_from(sorted(WORDS)))
    parts = draw(st.lists(sentence(lang), min_size=1, max_size=4))
    text, spoken = " ".join(p for p, _ in parts), " ".join(s for _, s in parts)
    if text.endswith(","):  # a paragraph ends its last sentence
        text, spoken = text[:-1] + ".", spoken[:-1] + "."
    return text, spoken


@st.composite
def block(draw) -> tuple[str, str]:
    kind = draw(
        st.sampled_from(
            ["para"] * 5
            + ["heading", "bullets", "numbered", "quote", "fence"]
            + ["table", "other", "rule"]
        )
    )
    if kind == "para":
        return draw(paragraph())
    if kind == "heading":
        text, spoken = draw(paragraph())
        return "#" * draw(st.integers(1, 3)) + " " + text, spoken
    if kind in ("bullets", "numbered"):
        items = draw(st.lists(paragraph(), min_size=1, max_size=4))
        lines, spoken = [], []
        for k, (text, said) in enumerate(items, 1):
            marker = f"{k}." if kind == "numbered" else draw(st.sampled_from("-*+"))
            lines.append(f"{marker} {text}")
            spoken.append(said)
        return "\n".join(lines), " ".join(spoken)
    if kind == "quote":
        text, spoken = draw(paragraph())
        return "> " + text, spoken
    if kind == "fence":
        code = draw(st.sampled_from(["print('hi')", "npm i\nnpm test", "x = 3.5"]))
        lang = draw(st.sampled_from(["", "python", "bash"]))
        return f"```{lang}\n{code}\n```", ""
    if kind == "table":
        a, b = draw(st.sampled_from([("Name", "Price"), ("Plan", "Cost")]))
        c, d = draw(st.sampled_from([("Tea", "3 €"), ("Pro", "$5.99")]))
        return f"| {a} | {b} |\n|---|---|\n| {c} | {d} |", f"{a} {b} {c} {d}"
    if kind == "rule":
        return "---", ""
    text = draw(st.sampled_from(OTHER_SCRIPTS))
    return text, text


@st.composite
def answers(draw) -> tuple[str, str]:
    blocks = draw(st.lists(block(), min_size=1, max_size=5))
    text = "\n\n".join(b for b, _ in blocks)
    spoken = " ".join(s for _, s in blocks)
    if "][" in text:  # reference links: their definitions, at the end
        text += "\n\n[1]: https://example.com/one\n[2]: https://example.com/two"
        text += '\n[docs]: https://example.com/docs "Docs"'
    return text, spoken


# ------------------------------------------------------------------- checking
def held(shaper) -> int:
    """Characters the shaper holds back, not sent yet (its unspeakable lead
    aside: text before the first words that cannot be said)."""
    f = shaper._filter  # noqa: SLF001 - the test looks inside on purpose
    n = len(shaper._joiner._held) + shaper._word_len  # noqa: SLF001
    if f is not None:
        n += len(f._buf) + sum(len(m) for m in f._more)  # noqa: SLF001
    return n


def run(segments: list[str]) -> list[str]:
    shaper = TextShaper()
    out = []
    for segment in segments:
        out.append(shaper.feed(segment))
        assert held(shaper) <= HELD_MAX, (segment, held(shaper))
    out[-1] += shaper.finish()
    assert held(shaper) == 0  # all sent at text_input_end
    return [m for m in out if m]


TAGS = re.compile(r"<break [^<>]*/>|<flush>")


def alnum(text: str) -> str:
    """The letters and digits heard (Gradium's tags are not read)."""
    return "".join(c for c in TAGS.sub(" ", text) if c.isalnum())


WORD_CHAR = re.compile(r"[^\W_]")
CJK = re.compile(r"[\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")


def check_messages(sent: list[str]) -> None:
    """No message ends inside a word; none inside a number but the first."""
    for k, (a, b) in enumerate(zip(sent, sent[1:], strict=False)):
        if WORD_CHAR.match(a[-1]) and WORD_CHAR.match(b[0]):
            assert CJK.match(a[-1]) or CJK.match(b[0]), (a, b)
        if k and re.search(r"\d[.,]\Z", a):
            assert not b[0].isdigit(), (a, b)


def cuts(text: str, points: list[int]) -> list[str]:
    marks = sorted({p % (len(text) + 1) for p in points})
    pieces = [text[a:b] for a, b in zip([0, *marks], [*marks, len(text)], strict=True)]
    return [p for p in pieces if p] + [""]


def check_answer(answer: str, spoken: str, seed: int, points: list[int]) -> None:
    whole = "".join(run([answer, ""]))
    assert alnum(whole) == alnum(spoken), (answer, whole)
    splitter = ten_splitter(answer)
    producers = {
        "ten_splitter": (splitter, "".join(run(["".join(splitter), ""]))),
        "token_stream": (token_stream(answer, seed), whole),
        "random_cuts": (cuts(answer, points), whole),
    }
    for name, (segments, expected) in producers.items():
        sent = run(segments)
        assert "".join(sent) == expected, (name, segments)
        check_messages(sent)
    sent = run(stripped_sentences(answer))
    # A stripping producer loses the line breaks that make "1." a list number:
    # where it cannot tell ("how." + "1." + "000 people", an item with nothing
    # to say), the number is said. Nothing is lost, nothing else is added.
    said = alnum(spoken)
    heard = alnum("".join(sent))
    assert is_subsequence(said, heard), ("stripped", answer, sent)
    assert extra(said, heard).isdigit() or heard == said, ("stripped", answer, sent)
    check_messages(sent)


def is_subsequence(short: str, long: str) -> bool:
    chars = iter(long)
    return all(c in chars for c in short)


def extra(short: str, long: str) -> str:
    """What long has more than short (short being a subsequence of it)."""
    out, k = [], 0
    for c in long:
        if k < len(short) and short[k] == c:
            k += 1
        else:
            out.append(c)
    return "".join(out)


# Every failure a run found, kept: (answer, spoken, token seed, cut points).
FOUND: list[tuple[str, str, int, list[int]]] = [
    # stripped: "[1]: https://..." glued to the sentence before it was spoken
    (
        "x [die][1].\n\n[1]: https://example.com/one\n[2]: https://example.com/two",
        "x die.",
        0,
        [],
    ),
    # stripped: "1." + "<break .../>": a list item whose text starts with a tag
    ('<break time="1.5s" />.\n\n1. <break time="1.5s" />.', ". .", 0, []),
    # stripped: "1." + "<break .../>," + "2." after a comma: the next item
    ('1. <break time="1.5s" />,\n2. <break time="1.5s" />.', ", .", 0, []),
    # TEN's splitter, before any space showed: "System." + "IO!" got a space
    ('<break time="1.5s" /> System.IO!', " System.IO!", 0, []),
    ('<break time="1.5s" /> System.IO <break time="1.5s" />.', " System.IO .", 0, []),
    # stripped: "2." + "1." + "000.": the next item of a list, its text a number
    # (the "2" is said: a number is never dropped for a list number)
    (
        '<break time="1.5s" />.\n\n1. <break time="1.5s" />.\n2. 1.000.',
        ". . 1.000.",
        0,
        [],
    ),
    ('<break time="1.5s" />.\n\n1. 1.000.', ". 1.000.", 0, []),
    # stripped: "…." + "1." + "000." is the number 1.000, not a list's "1."
    ('<break time="1.5s" />. 1.000.', ". 1.000.", 0, []),
    # stripped: "ca." + "11." + "[1]: https://...": a number, then a definition
    (
        '<break time="1.5s" /> [die][1] ca. 11.\n\n[1]: https://example.com/one\n'
        '[2]: https://example.com/two\n[docs]: https://example.com/docs "Docs"',
        " die ca. 11.",
        0,
        [],
    ),
    # stripped: "ca." + "11." + "<break .../>": a number, not an item 11
    ('<break time="1.5s" /> ca. 11. <break time="1.5s" />.', " ca. 11. .", 0, []),
    # random cuts: "version 2.5." + "1. <flush>.": a version, not a list item
    ("---\n\nversion 2.5.1. <flush>.", " version 2.5.1. .", 0, [4193]),
    # stripped, after a list of two: "3." + "14." is 3.14, not the item 3
    (
        '1. <break time="1.5s" />.\n2. <break time="1.5s" />.\n\n'
        '<break time="1.5s" />. 3.14.',
        ". . . 3.14.",
        0,
        [],
    ),
    # stripped: "1.000." + "2." + "<break .../>": the next item after a number
    ('1. <break time="1.5s" /> 1.000.\n2. <break time="1.5s" />.', " 1.000. .", 0, []),
    # stripped: "2." + "😊." (a piece the splitter drops): the "2" is said
    ('1. <break time="1.5s" />.\n2. 😊.', ". .", 0, []),
    # random cuts, before any space showed: "U." + "S.! ..." got a space
    ('Die U.S.! <break time="1.5s" />.', "Die U.S.! .", 0, [6]),
    # a token stream, before any space showed: "tem." + "I" + "O." got a space
    ("- System.IO.", "System.IO.", 195, []),
    # stripped, after a list of four: "3," + "5." is 3,5, not the item 5
    (
        '<break time="1.5s" />.\n\n1. <break time="1.5s" />.\n2. <break time="1.5s" />.'
        '\n3. <break time="1.5s" />.\n4. <break time="1.5s" />.\n\n'
        '<break time="1.5s" /> 3,5. <break time="1.5s" />.',
        ". . . . .  3,5. .",
        0,
        [],
    ),
    # a token stream, before any space showed: "Console" + "." + "Wri" + "t"
    ('Console.WriteLine <break time="1.5s" />.', "Console.WriteLine .", 1, []),
    # random cuts: "[die die]" + "[1]: <break .../>": a reference link, no definition
    (
        "# [Straßenbahn heute][1] *die die die Straßenbahn Straßenbahn* [die die][1]: "
        '<break time="1.5s" />.\n\n[1]: https://example.com/one\n'
        '[2]: https://example.com/two\n[docs]: https://example.com/docs "Docs"',
        "Straßenbahn heute die die die Straßenbahn Straßenbahn die die: .",
        0,
        [72],
    ),
    # the check itself: "000.\n" + "1.000." ends at a line break, not in a number
    ('1. <break time="1.5s" /> 1.000.\n2. 1.000.', " 1.000. 1.000.", 0, []),
    # token streams: "¿" + "<break .../>": the space before a tag in a new message
    (
        '<break time="1.5s" />.\n\n1. <break time="1.5s" />.\n2. ¿<break time="1.5s" />?',
        ". . ¿?",
        0,
        [],
    ),
]


@PROFILE
@given(answers(), st.integers(0, 2**16), st.lists(st.integers(0, 10_000), max_size=40))
def test_generated_answers(answer_spoken, seed, points):
    answer, spoken = answer_spoken
    check_answer(answer, spoken, seed, points)


@pytest.mark.parametrize(("answer", "spoken", "seed", "points"), FOUND)
def test_found_examples(answer, spoken, seed, points):
    check_answer(answer, spoken, seed, points)
