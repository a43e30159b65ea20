"""A canary key in every place a user may put one never shows up anywhere else.

The canary sits in ``params.api_key``, in the URL's user info and query, in
``json_config`` and in an unknown pass-through param. With every logger at DEBUG
(TEN's log through the stand-in, Python's root logger with websockets and asyncio,
asyncio's debug mode on the extension's loop with every callback reported), it
must not appear in a log line, a printed line, a message sent over the graph
(errors included: bad scheme, key refused by the server, unreachable host), a
command result, the ``repr``/``str`` of the config, the clients, the requests and
the errors, or a dump file name. json_config and pass-through params do go to
Gradium in ``setup``: the wire to the server is not checked.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from gradium_server import ServerConfig, ServerThread
from harness import errors, ext_module, frames_between, named, run_session

GradiumTTSConfig = ext_module("config").GradiumTTSConfig

CANARY = "gsk_CANARY_7f3a9c1e5b2d4f60"
CORE = "CANARY_7f3a9c1e5b2d4f6"  # what no mask may show
META = {"session_id": "s1", "turn_id": 1}


def leaks(text: str) -> bool:
    return CANARY in text or CORE in text


def canary_props(url: str, tmp_path: Path, **params: Any) -> dict[str, Any]:
    scheme, rest = url.split("://", 1)
    return {
        "dump": True,
        "dump_path": str(tmp_path / "dump"),
        "enable_words": True,
        "params": {
            "api_key": CANARY,
            "url": f"{scheme}://user:{CANARY}@{rest}?x-api-key={CANARY}&token={CANARY}",
            "voice_id": "synthetic",
            "sample_rate": 16000,
            "json_config": {"temp": 0.5, "auth": CANARY},
            "custom_auth_token": CANARY,
            **params,
        },
    }


class Watch:
    """Everything the extension shows: reprs of its objects, and asyncio debug."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.shown: list[str] = []
        watch = self
        extension = ext_module("extension")
        GradiumTTSExtension = extension.GradiumTTSExtension
        on_init = GradiumTTSExtension.on_init
        on_stop = GradiumTTSExtension.on_stop
        finalize = GradiumTTSExtension._finalize
        vendor_error = GradiumTTSExtension._vendor_error
        base = extension.GradiumTTSClient

        def show(*objects: Any) -> None:
            for obj in objects:
                watch.shown += [repr(obj), str(obj)]

        class ShownClient(base):  # type: ignore[misc, valid-type]
            def request(self, setup, **kw):
                stream = super().request(setup, **kw)
                show(self, stream)
                return stream

        async def on_init_(self, ten_env):
            loop = asyncio.get_running_loop()
            self._was_debug = (loop.get_debug(), loop.slow_callback_duration)
            loop.set_debug(True)
            loop.slow_callback_duration = 0.0  # every callback, with its arguments
            await on_init(self, ten_env)
            show(self.config, self._properties.get("params", {}).keys())

        async def on_stop_(self, ten_env):
            show(self.config, self.client)
            try:
                await on_stop(self, ten_env)
            finally:
                loop = asyncio.get_running_loop()
                loop.set_debug(self._was_debug[0])
                loop.slow_callback_duration = self._was_debug[1]

        async def finalize_(self, turn, reason, error=None):
            show(turn, turn.stream, error, self.config)
            await finalize(self, turn, reason, error)

        def vendor_error_(self, err):
            out = vendor_error(self, err)
            show(err, out)
            return out

        monkeypatch.setattr(extension, "GradiumTTSClient", ShownClient)
        monkeypatch.setattr(GradiumTTSExtension, "on_init", on_init_)
        monkeypatch.setattr(GradiumTTSExtension, "on_stop", on_stop_)
        monkeypatch.setattr(GradiumTTSExtension, "_finalize", finalize_)
        monkeypatch.setattr(GradiumTTSExtension, "_vendor_error", vendor_error_)


@pytest.fixture
def watched(monkeypatch, caplog, capfd, ten_log):
    caplog.set_level(logging.DEBUG)
    for name in ("websockets", "websockets.client", "asyncio", "gradium_tts", "ten"):
        caplog.set_level(logging.DEBUG, logger=name)
    watch = Watch(monkeypatch)
    yield watch
    # --- nothing the extension side logged, printed or showed holds the key
    records = caplog.get_records("call")
    ours = [r for r in records if not r.name.startswith("websockets.server")]
    assert len(ours) > 5
    assert any(r.name == "asyncio" for r in ours)  # the debug mode did report
    for record in ours:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        assert not leaks(text), (record.name, text)
    # what the extension logged through its ten_env (TEN's own log, not logging)
    assert ten_log.lines and not leaks(ten_log.text()), ten_log.text()
    out, err = capfd.readouterr()
    assert not leaks(out) and not leaks(err)
    assert watch.shown and not [s for s in watch.shown if leaks(s)]


def check_graph(sess) -> None:
    for r in sess.records:
        assert not leaks(json.dumps(r.props)), (r.name, r.props)
    for _status, result in sess.cmd_results:
        assert not leaks(json.dumps(result)), result


# ------------------------------------------------------------------ the sessions
def test_a_working_session_never_shows_the_key(watched, tmp_path):
    with ServerThread(ServerConfig.for_tests()) as srv:

        async def script(s):
            await s.text("r1", "Secrets stay secret.", end=True, metadata=META)
            await s.wait_end("r1")
            await s.text(
                "r2", "A longer request that gets flushed. " * 4, metadata=META
            )
            await s.wait_for(lambda recs: len(frames_between(recs, "r2")) >= 2)
            await s.flush("f1")
            await s.wait_for(lambda recs: named(recs, "tts_flush_end"))
            # a client setting (rebuilds the client) and a bad scheme (refused)
            status, _ = await s.cmd(
                "update_configs", {"params": {"response_timeout_s": 9}}
            )
            assert status == 0
            bad = f"http://u:{CANARY}@example.test/x?key={CANARY}"
            status, result = await s.cmd("update_configs", {"params": {"url": bad}})
            assert (
                status == 1 and "http://***@example.test/x?key=***" in result["message"]
            )
            await s.text("r3", "Still fine.", end=True, metadata=META)
            await s.wait_end("r3")

        sess = run_session(canary_props(srv.url, tmp_path), script)
        (setup, *_) = srv.received("setup")
    # the pass-through values did reach Gradium (they are the user's to send)
    assert (
        setup["json_config"]["auth"] == CANARY and setup["custom_auth_token"] == CANARY
    )
    assert named(sess.records, "tts_text_result") and not errors(sess.records)
    dumps = list((tmp_path / "dump").iterdir())
    assert len(dumps) == 3 and not [p for p in dumps if leaks(p.name)]
    check_graph(sess)


def test_a_key_refused_by_the_server_is_not_shown(watched, tmp_path):
    with ServerThread(ServerConfig.for_tests(api_keys={"the-only-good-key"})) as srv:

        async def script(s):
            await s.text("r1", "Refused.", end=True, metadata=META)
            await s.wait_end("r1")
            await s.wait_error("r1")

        sess = run_session(canary_props(srv.url, tmp_path), script)
    assert errors(sess.records)[0].props["code"] == -1000
    check_graph(sess)


def test_a_key_the_server_echoes_is_masked_everywhere(watched, tmp_path):
    """The server's error message holds the key (bare, as x-api-key:, api_key=,
    Bearer): the graph error, its vendor_info and every log line mask it."""
    with ServerThread(ServerConfig.for_tests()) as srv:

        async def script(s):
            await s.text("r1", "Echo. [[fault:echo_key:1]]", end=True, metadata=META)
            await s.wait_end("r1")
            await s.text("r2", "Echo before audio. [[fault:echo_key:0]]", end=True)
            await s.wait_end("r2")
            await s.wait_error("r2")

        sess = run_session(canary_props(srv.url, tmp_path), script)
        echoed = [
            e
            for e in srv.log_snapshot()
            if e.direction == "out" and e.type == "error" and CANARY in (e.text or "")
        ]
    assert len(echoed) >= 2  # r1 once (after audio), r2 and its replay
    errs = errors(sess.records)
    assert [e.props["id"] for e in errs] == ["r1", "r2"]
    for err in errs:
        assert err.props["code"] == 1000
        assert "***" in err.props["message"] and "***" in json.dumps(
            err.props["vendor_info"]
        )
    check_graph(sess)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f"bad key {CANARY} here", "bad key *** here"),
        (
            "headers: x-api-key: abc123; authorization: Bearer tok.en-1",
            "headers: x-api-key: ***; authorization: ***",
        ),
        ("query api_key=zzz&token=qq&voice=v", "query api_key=***&token=***&voice=v"),
        ('{"api_key": "sekret", "n": 1}', '{"api_key": "***", "n": 1}'),
        ("Bearer abc.def", "Bearer ***"),
        ("API key is revoked or expired", "API key is revoked or expired"),
        ("idle timeout: no message received", "idle timeout: no message received"),
    ],
)
def test_mask_secrets(text, shown):
    assert ext_module("gradium_tts").mask_secrets(text, [CANARY, ""]) == shown


def test_an_unreachable_host_is_reported_without_the_key(watched, tmp_path):
    url = "ws://127.0.0.1:1/api/speech/tts"  # nothing listens on port 1

    async def script(s):
        await s.text("r1", "Nobody there.", end=True, metadata=META)
        await s.wait_end("r1", timeout=15)
        await s.wait_error("r1")

    sess = run_session(
        canary_props(url, tmp_path, connect_timeout_s=2, response_timeout_s=2), script
    )
    assert errors(sess.records)
    assert named(sess.records, "tts_audio_end")[0].props["reason"] == 3
    check_graph(sess)


def test_a_bad_scheme_is_reported_without_the_key(watched, tmp_path):
    async def script(s):
        await s.wait_for(lambda recs: errors(recs))

    sess = run_session(
        canary_props("http://example.test/api/speech/tts", tmp_path), script
    )
    (err,) = errors(sess.records)
    assert err.props["code"] == -1000
    assert (
        "http://***@example.test/api/speech/tts?x-api-key=***&token=***"
        in (err.props["message"])
    )
    check_graph(sess)


# ------------------------------------------------------------- the config alone
def test_the_config_string_shows_no_value_that_may_be_a_secret():
    config = GradiumTTSConfig.from_properties(
        canary_props("wss://api.example.test/api/speech/tts", Path("/tmp"))
    )
    for text in (str(config), repr(config), json.dumps(config.safe_dict())):
        assert not leaks(text), text
    shown = config.safe_dict()
    assert shown["json_config"] == {"temp": 0.5, "auth": "***"}  # numbers kept
    assert shown["extra_setup"] == {"custom_auth_token": "***"}
    assert (
        shown["url"]
        == "wss://***@api.example.test/api/speech/tts?x-api-key=***&token=***"
    )
