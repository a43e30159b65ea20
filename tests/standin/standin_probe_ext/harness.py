"""A recording AsyncExtensionTester and message builders for the stand-in tests."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from ten_runtime import AsyncExtensionTester, AsyncTenEnvTester, AudioFrame, Data

Event = tuple[str, str, Any]


def data(name: str, payload: dict | None = None) -> Data:
    msg = Data.create(name)
    msg.set_property_from_json(None, json.dumps(payload or {}))
    return msg


def text_input(
    rid: str, text: str, end: bool = False, metadata: dict | None = None
) -> Data:
    payload: dict[str, Any] = {"request_id": rid, "text": text, "text_input_end": end}
    if metadata is not None:
        payload["metadata"] = metadata
    return data("tts_text_input", payload)


def flush(flush_id: str, metadata: dict | None = None) -> Data:
    payload: dict[str, Any] = {"flush_id": flush_id}
    if metadata is not None:
        payload["metadata"] = metadata
    return data("tts_flush", payload)


class Recorder(AsyncExtensionTester):
    """Sends ``sends`` from on_start, records everything, stops when ``until(self)``."""

    def __init__(
        self,
        sends: list[Data] | None = None,
        until: Callable[[Recorder], bool] | None = None,
        on_event: Callable[[Recorder, AsyncTenEnvTester, Event], Awaitable[None]]
        | None = None,
    ) -> None:
        super().__init__()
        self.sends = list(sends or [])
        self.until = until
        self.on_event = on_event
        self.events: list[Event] = []
        self.stopped = False

    async def on_start(self, ten_env: AsyncTenEnvTester) -> None:
        for msg in self.sends:
            await ten_env.send_data(msg)

    async def _record(self, ten_env: AsyncTenEnvTester, event: Event) -> None:
        self.events.append(event)
        if self.on_event is not None:
            await self.on_event(self, ten_env, event)
        if not self.stopped and self.until is not None and self.until(self):
            self.stopped = True
            ten_env.stop_test()

    async def on_data(self, ten_env: AsyncTenEnvTester, msg: Data) -> None:
        payload = json.loads(msg.get_property_to_json(None)[0])
        await self._record(ten_env, ("data", msg.get_name(), payload))

    async def on_audio_frame(
        self, ten_env: AsyncTenEnvTester, frame: AudioFrame
    ) -> None:
        meta_text, err = frame.get_property_to_json("metadata")
        info = {
            "buf": bytes(frame.get_buf()),
            "sample_rate": frame.get_sample_rate(),
            "bytes_per_sample": frame.get_bytes_per_sample(),
            "channels": frame.get_number_of_channels(),
            "samples": frame.get_samples_per_channel(),
            "fmt": frame.get_data_fmt(),
            "metadata": json.loads(meta_text) if err is None else None,
        }
        await self._record(ten_env, ("frame", frame.get_name(), info))

    # -- views -----------------------------------------------------------------
    def named(self, name: str) -> list[Any]:
        return [p for kind, n, p in self.events if kind == "data" and n == name]

    def audio_sequence(self) -> list[tuple]:
        """("start", rid) / ("frame", nbytes) / ("end", rid, reason) in arrival order."""
        out: list[tuple] = []
        for kind, name, p in self.events:
            if kind == "data" and name == "tts_audio_start":
                out.append(("start", p["request_id"]))
            elif kind == "data" and name == "tts_audio_end":
                out.append(("end", p["request_id"], p["reason"]))
            elif kind == "frame":
                out.append(("frame", len(p["buf"])))
        return out


def run(
    tester: AsyncExtensionTester,
    addon: str,
    props: dict | None = None,
    timeout_s: float = 10,
):
    tester.set_test_mode_single(addon, json.dumps(props) if props is not None else None)
    tester.set_timeout(int(timeout_s * 1_000_000))
    return tester.run()


def ended(rid: str) -> Callable[[Recorder], bool]:
    return lambda r: any(p["request_id"] == rid for p in r.named("tts_audio_end"))
