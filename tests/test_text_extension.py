"""What the voice says, end to end: what the local Gradium server received."""

from __future__ import annotations

import asyncio
import time

import pytest
from gradium_server import ServerConfig, ServerThread
from harness import (
    check_request_sequences,
    errors,
    metrics,
    named,
    props,
    run_session,
)

META = {"session_id": "s1", "turn_id": 1}


@pytest.fixture
def server():
    with ServerThread(ServerConfig.for_tests()) as srv:
        yield srv


def texts(server):
    return [m["text"] for m in server.received("text")]


MARKDOWN_ANSWER = [
    "**Sure!**",
    " Here are the steps:\n\n## Steps\n",
    "- Mix the [flour](https://example.com/f_(1)).\n",
    "- Bake for 3.5 hours 😊\n",
    "```python\nbake(t=180)\n",
    "```\n",
    "Done!",
]


def test_markdown_and_emoji_never_reach_the_server(server):
    async def script(s):
        for chunk in MARKDOWN_ANSWER:
            await s.text("r1", chunk, metadata=META)
        await s.text("r1", "", end=True, metadata=META)
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    sent = "".join(texts(server))
    assert sent == (
        "Sure! Here are the steps:\n\nSteps.\nMix the flour.\nBake for 3.5 hours .\n\nDone!"
    )
    check_request_sequences(
        sess.records, ["r1"], reasons={"r1": 1}, metadata={"r1": META}
    )
    assert not errors(sess.records)


def test_a_request_of_only_formatting_ends_at_once_without_the_network(server):
    async def script(s):
        await s.wait_for(lambda recs: named(recs, "connection_status_changed"))
        await s.text("e1", "**", metadata=META)
        await s.text("e1", "😊👍🏽", metadata=META)
        await s.text("e1", "## ", end=True, metadata=META)
        s.last_sent = time.monotonic()
        await s.wait_end("e1")

    sess = run_session(props(server), script)
    (end,) = named(sess.records, "tts_audio_end")
    assert end.props["reason"] == 1
    assert end.props["request_total_audio_duration_ms"] == 0
    assert end.t - sess.last_sent < 0.05
    assert not server.received("setup") and not server.received("text")
    assert not errors(sess.records)


def test_token_streams_and_sentence_streams_are_joined(server):
    async def script(s):
        for chunk in ["Hel", "lo", " world.", " ¿Qué", " tal?", "你好。", "今天好吗？"]:
            await s.text("r1", chunk)
        await s.text("r1", "", end=True)
        await s.wait_end("r1")

    run_session(props(server), script)
    # No message ends inside a word; the stream's own spacing is kept as it is.
    assert texts(server) == ["Hello world.", " ¿", "Qué tal?", "你好。", "今天好吗？"]
    assert "".join(texts(server)) == "Hello world. ¿Qué tal?你好。今天好吗？"


def test_text_filter_false_sends_markdown_as_it_is_but_still_joins(server):
    async def script(s):
        await s.text("r1", "**Sure!**")
        await s.text("r1", "Here 😊.", end=True)
        await s.wait_end("r1")

    run_session(props(server, text_filter=False), script)
    assert texts(server) == ["**Sure!**", " Here 😊."]
    assert "text_filter" not in server.received("setup")[0]  # never sent to Gradium


def test_held_text_is_flushed_at_text_input_end_before_end_of_stream(server):
    async def script(s):
        # "here" may go on (a word); "(https://x." may be a link destination.
        await s.text("r1", "Click [here](https://x.")
        await s.wait_for(lambda _: texts(server) == ["Click "])
        await asyncio.sleep(0.1)
        assert texts(server) == ["Click "]  # nothing more until it can be decided
        await s.text("r1", "", end=True)
        await s.wait_end("r1")

    run_session(props(server), script)
    assert [(m["type"], m.get("text")) for m in server.received()][1:] == [
        ("text", "Click "),
        ("text", "here(https://x."),  # no ")": it was no link, its text is said
        ("end_of_stream", None),
    ]


def test_ttfb_counts_from_the_first_speakable_text_after_filtering(server):
    pause = 0.6

    async def script(s):
        await s.wait_for(lambda recs: named(recs, "connection_status_changed"))
        await s.text("r1", "## ")  # formatting only: nothing to say yet
        await s.text("r1", "😊")
        await asyncio.sleep(pause)
        s.speakable_at = time.monotonic()
        await s.text("r1", "Hello there.", end=True)
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    (setup,) = [e for e in server.log if e.direction == "in" and e.type == "setup"]
    assert setup.t >= sess.speakable_at  # the request opened with the first words
    (ttfb,) = metrics(sess.records, "ttfb")
    assert ttfb.props["metrics"]["ttfb"] < pause * 1000
    assert texts(server) == ["Hello there."]


def test_word_results_describe_what_was_spoken(server):
    async def script(s):
        await s.text("r1", "**Hello** brave [new](https://x.com) world 😊", end=True)
        await s.wait_end("r1")

    sess = run_session(props(server, enable_words=True), script)
    results = named(sess.records, "tts_text_result")
    assert [r.props["text"] for r in results] == ["Hello", "brave", "new", "world"]
    check_request_sequences(sess.records, ["r1"])


def test_fault_markers_pass_through_the_filter_untouched(server):
    marker = "[[fault:unknown_type:x_local_probe]]"

    async def script(s):
        await s.text("r1", f"**Hello** {marker} world.", end=True)
        await s.wait_end("r1")

    sess = run_session(props(server), script)
    assert texts(server) == [f"Hello {marker} world."]
    assert [e.data["kind"] for e in server.events_of("fault_fired")] == ["unknown_type"]
    check_request_sequences(sess.records, ["r1"], reasons={"r1": 1})
