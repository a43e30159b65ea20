"""The probe extensions. Behaviour is chosen by message name / text."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

from ten_ai_base.message import (
    ModuleError,
    ModuleErrorCode,
    ModuleErrorVendorInfo,
    ModuleType,
    TTSAudioEndReason,
)
from ten_ai_base.struct import TTSTextInput, TTSTextResult
from ten_ai_base.tts2 import AsyncTTS2BaseExtension
from ten_runtime import (
    AsyncExtension,
    AsyncTenEnv,
    Cmd,
    CmdResult,
    Data,
    Loc,
    SendOptions,
    StatusCode,
)

EVENTS: list[tuple[Any, ...]] = []
SAMPLE_RATE = 16000


def _reply(name: str, payload: dict) -> Data:
    data = Data.create(name)
    data.set_property_from_json("", json.dumps(payload))
    return data


class ProbeBasicExtension(AsyncExtension):
    async def on_configure(self, ten_env: AsyncTenEnv) -> None:
        whole = await ten_env.get_property_to_json("")
        a = await ten_env.get_property_string("a")
        EVENTS.append(
            (
                "configure",
                whole,
                a[0],
                a[1].error_code() if a[1] else None,
                a[1].error_message() if a[1] else None,
            )
        )

    async def on_init(self, ten_env: AsyncTenEnv) -> None:
        EVENTS.append(("init_begin", id(self)))
        text, _ = await ten_env.get_property_to_json("")
        delay, _ = await ten_env.get_property_int("init_delay_ms")
        await asyncio.sleep(delay / 1000)
        EVENTS.append(("init_end", json.loads(text)))

    async def on_start(self, ten_env: AsyncTenEnv) -> None:
        EVENTS.append(("start",))
        self.send_at_stop, _ = await ten_env.get_property_bool("send_at_stop")

    async def on_stop(self, ten_env: AsyncTenEnv) -> None:
        EVENTS.append(("stop",))
        if getattr(self, "send_at_stop", False):  # one message before on_stop first yields, one after
            await ten_env.send_data(_reply("stop_before_yield", {}))
            await asyncio.sleep(0.05)
            await ten_env.send_data(_reply("stop_after_yield", {}))
            EVENTS.append(("stop_sent",))

    async def on_deinit(self, ten_env: AsyncTenEnv) -> None:
        EVENTS.append(("deinit",))

    async def on_cmd(self, ten_env: AsyncTenEnv, cmd: Cmd) -> None:
        EVENTS.append(("cmd", cmd.get_name()))
        if cmd.get_name() == "slow_cmd":
            await asyncio.sleep(0.02)
        result = CmdResult.create(StatusCode.OK, cmd)
        result.set_property_string("detail", f"hello from {cmd.get_name()}")
        await ten_env.return_result(result)

    async def on_data(self, ten_env: AsyncTenEnv, data: Data) -> None:
        name = data.get_name()
        payload = json.loads(data.get_property_to_json(None)[0])
        EVENTS.append(("data", name, payload))
        if name == "ping":
            await ten_env.send_data(_reply("pong", payload))
        elif name == "sleep":
            EVENTS.append(("sleep_start", payload["idx"]))
            await asyncio.sleep(payload["ms"] / 1000)
            EVENTS.append(("sleep_end", payload["idx"]))
            await ten_env.send_data(_reply("slept", payload))
        elif name == "get":
            out = {}
            for kind, path in payload["reads"]:
                if kind == "exists":
                    value, err = await ten_env.is_property_exist(path)
                else:
                    value, err = await getattr(ten_env, f"get_property_{kind}")(path)
                out[f"{kind}:{path}"] = [
                    value,
                    err.error_code() if err else None,
                    err.error_message() if err else None,
                ]
            await ten_env.send_data(_reply("got", out))
        elif name == "whoami":
            me = {
                "thread": threading.current_thread().name,
                "ident": threading.get_ident(),
                "loop": id(asyncio.get_running_loop()),
            }
            await ten_env.send_data(_reply("me", {**payload, **me}))
        elif name == "block":  # blocks its loop's thread, as a careless extension would
            EVENTS.append(("block_start", time.monotonic()))
            time.sleep(payload["ms"] / 1000)  # noqa: ASYNC251 - on purpose
            EVENTS.append(("block_end", time.monotonic()))
            await ten_env.send_data(_reply("blocked", payload))
        elif name == "set_bad_json":
            try:
                err = await ten_env.set_property_from_json("x", "not json")
                outcome = {"returned": err is None}
            except Exception as e:  # noqa: BLE001 - the observed behaviour is a raise
                outcome = {"raised": str(e)}
            await ten_env.send_data(_reply("set_bad_json_done", outcome))
        elif name == "raise":
            raise RuntimeError(payload.get("message", "probe boom"))
        elif name == "raise_cancelled":
            raise asyncio.CancelledError()
        elif name == "late_raise":
            await asyncio.sleep(payload["ms"] / 1000)
            raise RuntimeError("probe late boom")


class ProbeTTSExtension(AsyncTTS2BaseExtension):
    """request_tts: audio start on a new id, one frame per chunk, end on text_input_end.

    Texts: "sleep:<ms>" sleeps then sends a 2-byte frame; "bytes:<n>" sends n bytes;
    "fail" finishes the request with a FATAL error; "" sends no frame.
    """

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.current_rid: str | None = None

    def vendor(self) -> str:
        return "probe"

    def synthesize_audio_sample_rate(self) -> int:
        return SAMPLE_RATE

    async def on_data(self, ten_env: AsyncTenEnv, data: Data) -> None:
        name = data.get_name()
        EVENTS.append(("on_data", name))
        if name == "probe_send":
            spec = json.loads(data.get_property_to_json("")[0])
            out = _reply(spec["name"], spec["props"])
            if spec.get("dests"):
                out.set_dests([Loc(extension_name=n) for n in spec["dests"]])
            options = SendOptions(wait_for_result=True) if spec.get("wait") else None
            err = await ten_env.send_data(out, options)
            await ten_env.send_data(
                _reply(
                    "probe_sent",
                    {
                        "name": spec["name"],
                        "err": [err.error_code(), err.error_message()] if err else None,
                    },
                )
            )
            return
        if name == "probe_text_result":
            await self.send_tts_text_result(
                TTSTextResult(
                    request_id="tr", text="hi", start_ms=0, duration_ms=5, words=[]
                )
            )
            return
        await super().on_data(ten_env, data)

    async def request_tts(self, t: TTSTextInput) -> None:
        EVENTS.append(("request_tts", t.request_id, t.text, t.text_input_end))
        rid = t.request_id
        if rid != self.current_rid:
            self.current_rid = rid
            extra = {"probe_extra": 1} if t.text == "xmeta" else None
            await self.send_tts_audio_start(rid, extra_metadata=extra)
        text = t.text
        self.metrics_add_output_characters(len(text))
        if text.startswith("sleep:"):
            await asyncio.sleep(int(text[6:]) / 1000)
            EVENTS.append(("woke", rid))
            await self.send_tts_audio_data(b"\x01\x02")
        elif text.startswith("bytes:"):
            chunk = bytes((i % 255) + 1 for i in range(int(text[6:])))
            self.metrics_add_recv_audio_chunks(chunk)
            await self.send_tts_audio_data(chunk)
        elif text == "fail":
            self.current_rid = None
            error = ModuleError(
                module=ModuleType.TTS,
                code=ModuleErrorCode.FATAL_ERROR,
                message="probe failure",
                vendor_info=ModuleErrorVendorInfo(
                    vendor="probe", code="401", message="denied"
                ),
            )
            await self.finish_request(rid, reason=TTSAudioEndReason.ERROR, error=error)
            return
        elif text:
            await self.send_tts_audio_data(b"\x00\x01\x02\x03")
        if t.text_input_end:
            await self.send_tts_audio_end(
                rid, 10, 20, reason=TTSAudioEndReason.REQUEST_END
            )
            self.current_rid = None
            await self.finish_request(rid)

    async def cancel_tts(self) -> None:
        EVENTS.append(("cancel_tts", self.current_rid))
        if self.current_rid is not None:
            await self.send_tts_audio_end(
                self.current_rid, 0, 0, reason=TTSAudioEndReason.INTERRUPTED
            )
            self.current_rid = None

    async def update_configs(self, configs: dict) -> None:
        EVENTS.append(("update_configs", configs))
        if configs.get("fail"):
            raise ValueError("bad config: fail")
