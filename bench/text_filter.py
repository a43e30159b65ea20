"""Cost of what the voice says: segment joining + markdown/emoji filter, per segment.

    .venv/bin/python bench/text_filter.py [--requests 2000]

Feeds typical LLM answers through ``TextShaper`` the way the extension does (one
shaper per request, one ``feed`` per ``tts_text_input`` segment, ``finish`` at
``text_input_end``) and prints the median and p99 time per call in microseconds,
for plain sentences, markdown-heavy sentences, and a token stream (a few
characters per segment). ``filter off`` is the joining rule alone. Then one
request of 20,000 tokens of each degenerate kind (``*``, ``-`` at a line start,
spaces after a list marker, ``- - -`` on one line, ``[[`` and other unmatched
brackets, backticks, a bare URL, ``<``, digits and ``.``...): a cost that grows
with what is held shows as a p99 far above the 50 µs budget, and ``finish`` (at
``text_input_end``) is timed with them. ``--module`` measures another copy of
``text_filter.py`` (an older one, for a before/after). Prints numbers; it does not
pass or fail.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load(path: Path):
    spec = importlib.util.spec_from_file_location("text_filter", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TextShaper = load(ROOT / "text_filter.py").TextShaper

PLAIN = [
    "Sure, I can help you plan the trip to Lisbon next week.",
    " The flight leaves at 10:30 and costs about $240, which is 15% less than usual.",
    " Would you like me to book a hotel near the old town as well?",
    " I can also check the weather forecast for Tuesday and Wednesday.",
]
MARKDOWN = [
    "**Sure!** Here's how to plan the trip 😊:\n\n## Steps\n",
    "1. Book the flight on [the airline's site](https://example.com/flights?id=42).\n",
    "- Pack *light*, and bring `adapter plugs` for the ~~old~~ new sockets 👍🏽.\n",
    "> Tip: the tram costs €3, so buy a 24-hour pass.\n",
]
SENTENCE = " ".join(s.strip() for s in PLAIN)
TOKENS = [SENTENCE[i : i + 4] for i in range(0, len(SENTENCE), 4)]


def run(
    segments: list[str], requests: int, filter_markup: bool
) -> tuple[list[float], list[float]]:
    """Microseconds per feed call, and per finish call."""
    feeds: list[float] = []
    finishes: list[float] = []
    clock = time.perf_counter_ns
    for _ in range(requests):
        shaper = TextShaper(filter_markup)
        for segment in segments:
            t0 = clock()
            shaper.feed(segment)
            feeds.append((clock() - t0) / 1000)
        t0 = clock()
        shaper.finish()
        finishes.append((clock() - t0) / 1000)
    return feeds, finishes


# (name, the first segment, the tokens repeated after it)
TOKEN_KINDS = [
    ("*", "", ["*"]),
    ("- at line start", "\n", ["-"]),
    ("spaces after a list marker", "\n-", [" "]),
    ("- - - on one line", "\n", ["-", " "]),
    ("space", "", [" "]),
    ("newlines", "", ["\n"]),
    (".", "", ["."]),
    ("digits and .", "", ["1", "."]),
    ("backtick", "", ["`"]),
    ("an unclosed backtick, words", "Use `x", [" word"]),
    ("#", "", ["#"]),
    ("[[", "", ["[["]),
    ("[ then words", "", ["[", "a "]),
    ("]", "", ["]"]),
    ("](", "", ["]("]),
    ("( after a link", "[a](", ["("]),
    ("<", "", ["<"]),
    ("<break, unclosed", "", ["<break "]),
    ("a bare URL", "https://a.io/", ["a/"]),
    ("a URL, then . and *", "https://a.io/", [".", "*"]),
    ("emoji", "", ["😊"]),
    ("letters", "", [*"abcdefghij"]),
    ("token words", "", [" word"]),
]
BUDGET_US = 50.0
TOKENS_PER_REQUEST = 20_000


def tokens(first: str, repeated: list[str], count: int = TOKENS_PER_REQUEST):
    out = [first] if first else []
    while len(out) < count:
        out.extend(repeated)
    return out[:count]


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--module", type=Path, help="another text_filter.py")
    args = parser.parse_args()
    global TextShaper
    if args.module:
        TextShaper = load(args.module).TextShaper
    cases = [
        ("plain sentences", PLAIN, True),
        ("markdown-heavy sentences", MARKDOWN, True),
        ("token stream (4 chars)", TOKENS, True),
        ("plain sentences, filter off", PLAIN, False),
    ]
    run(PLAIN + MARKDOWN, 200, True)  # warm up
    print(f"{args.requests} requests per case; µs per segment (feed), per finish")
    print(f"{'case':30} {'chars/seg':>9} {'median':>7} {'p99':>7} {'finish p50':>10}")
    for name, segments, on in cases:
        feeds, finishes = run(segments, args.requests, on)
        chars = sum(len(s) for s in segments) / len(segments)
        print(
            f"{name:30} {chars:9.0f} {statistics.median(feeds):7.1f} "
            f"{p99(feeds):7.1f} {statistics.median(finishes):10.1f}"
        )
    print(
        f"\n{TOKENS_PER_REQUEST:,} tokens, one request; budget {BUDGET_US:.0f} µs p99"
    )
    print(
        f"{'tokens':30} {'median':>7} {'p99':>7} {'max':>8} {'finish':>8} "
        f"{'total ms':>9}"
    )
    for name, first, repeated in TOKEN_KINDS:
        feeds, finishes = run(tokens(first, repeated), 1, True)
        total = (sum(feeds) + sum(finishes)) / 1000
        print(
            f"{name:30} {statistics.median(feeds):7.1f} {p99(feeds):7.1f} "
            f"{max(feeds):8.0f} {finishes[0]:8.0f} {total:9.1f}"
        )


if __name__ == "__main__":
    main()
