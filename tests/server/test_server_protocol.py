"""Single-request protocol behaviour of the local server (reference §1-§3, §5, §6)."""

from __future__ import annotations

import base64
import json
import struct

import pytest
from gradium_server import LatencyModel, espeak_available, synthesize_synthetic
from gradium_server.voices import CHAR_S, GAP_S
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

TEXT = "Hello brave new world"


def expected_samples(text: str, rate: int) -> int:
    """Independent of the server's code: the synthetic voice's documented rule."""
    return sum(
        round(CHAR_S * len(w) * rate) + round(GAP_S * rate)
        for w in text.split()
        if any(c.isalnum() for c in w)
    )


# --- happy path and message shapes ------------------------------------------------------


async def test_ready_fields(gradium_server, h):
    res = await h.synth(
        gradium_server.url,
        TEXT,
        model_name="flagship",
        voice_id="YTpq7expH9539ERJ",
        output_format="pcm",
        client_req_id="r1",
    )
    ready = res.messages[0]
    assert ready["type"] == "ready"
    assert ready["model_name"] == "flagship"
    assert ready["model_ext"]
    assert ready["sample_rate"] == 48000
    assert ready["frame_size"] == 3840
    assert ready["audio_stream_names"] and ready["text_stream_names"]
    assert ready["client_req_id"] == "r1"
    import uuid

    assert str(uuid.UUID(ready["request_id"])) == ready["request_id"]


async def test_ready_without_client_req_id_and_default_model(gradium_server, h):
    res = await h.synth(gradium_server.url, TEXT)
    ready = res.of("ready")[0]
    assert "client_req_id" not in ready
    assert ready["model_name"] == "default"
    assert all("client_req_id" not in m for m in res.messages)


async def test_full_flow_order_and_close(gradium_server, h):
    res = await h.synth(gradium_server.url, TEXT)
    types = res.types()
    assert types[0] == "ready"
    assert types[-1] == "end_of_stream"
    assert set(types) == {"ready", "audio", "text", "end_of_stream"}
    assert res.closed and res.close_code == 1000


async def test_audio_messages_shape_and_timeline(gradium_server, h):
    res = await h.synth(gradium_server.url, TEXT, output_format="pcm_24000")
    frames = res.of("audio")
    rate, fs = 24000, res.of("ready")[0]["frame_size"]
    assert fs == 1920
    pos = 0.0
    for i, m in enumerate(frames):
        assert set(m) == {"type", "audio", "start_s", "stop_s", "stream_id"}
        assert isinstance(m["stream_id"], int)
        assert len(m["audio"]) % 4 == 0  # padded standard base64
        data = base64.b64decode(m["audio"], validate=True)
        assert "-" not in m["audio"] and "_" not in m["audio"]
        n = len(data) // 2
        if i < len(frames) - 1:
            assert n == fs  # 80 ms frames
        assert m["start_s"] == pytest.approx(pos, abs=1e-5)
        assert m["stop_s"] == pytest.approx(pos + n / rate, abs=1e-5)
        pos = m["stop_s"]
    assert pos == pytest.approx(expected_samples(TEXT, rate) / rate, abs=1e-5)


async def test_synthetic_voice_is_byte_exact(gradium_server, h):
    res = await h.synth(gradium_server.url, TEXT, output_format="pcm_16000")
    expected = synthesize_synthetic(TEXT, 16000).samples.tobytes()
    assert res.audio() == expected
    # chunked input (split at whitespace) renders identically
    res2 = await h.synth(gradium_server.url, ["Hello brave", "new", "world"])
    assert res2.audio() == expected
    assert h.rms(h.pcm16(expected)) > 1000


async def test_synthetic_pitch_follows_word(gradium_server, h):
    from gradium_server.voices import synthetic_word_pitch

    res = await h.synth(gradium_server.url, "abcdefghij", output_format="pcm_48000")
    samples = h.pcm16(res.audio())
    tone = samples[: round(CHAR_S * 10 * 48000)]
    crossings = sum(
        1 for a, b in zip(tone, tone[1:], strict=False) if (a < 0) != (b < 0)
    )
    measured = crossings / 2 / (len(tone) / 48000)
    assert measured == pytest.approx(synthetic_word_pitch("abcdefghij"), rel=0.05)


@pytest.mark.parametrize(
    "fmt,rate,bps",
    [
        ("pcm", 48000, 2),
        ("pcm_8000", 8000, 2),
        ("pcm_16000", 16000, 2),
        ("pcm_22050", 22050, 2),
        ("pcm_24000", 24000, 2),
        ("pcm_44100", 44100, 2),
        ("pcm_48000", 48000, 2),
        ("ulaw_8000", 8000, 1),
        ("alaw_8000", 8000, 1),
    ],
)
async def test_output_formats_byte_counts(gradium_server, h, fmt, rate, bps):
    res = await h.synth(gradium_server.url, TEXT, output_format=fmt)
    ready = res.of("ready")[0]
    assert ready["sample_rate"] == rate
    assert ready["frame_size"] == round(rate * 0.08)
    n = expected_samples(TEXT, rate)
    audio = res.audio()
    assert len(audio) == n * bps
    assert res.of("audio")[-1]["stop_s"] == pytest.approx(n / rate, abs=1e-5)
    if bps == 1:
        silence = {"ulaw_8000": 0xFF, "alaw_8000": 0xD5}[fmt]
        # the gap after the first word is digital silence in G.711
        gap_at = round(CHAR_S * 5 * rate) + 10
        assert audio[gap_at] == silence
        assert len(set(audio[:400])) > 20  # the tone is not silence


async def test_g711_matches_pcm(gradium_server, h):
    """µ-law/A-law payloads decode to the same waveform as pcm_8000 (±quantization)."""
    from gradium_server.formats import alaw_decode_one, ulaw_decode_one

    pcm = h.pcm16(
        (await h.synth(gradium_server.url, TEXT, output_format="pcm_8000")).audio()
    )
    ulaw = (await h.synth(gradium_server.url, TEXT, output_format="ulaw_8000")).audio()
    alaw = (await h.synth(gradium_server.url, TEXT, output_format="alaw_8000")).audio()
    for data, dec in ((ulaw, ulaw_decode_one), (alaw, alaw_decode_one)):
        decoded = [dec(b) for b in data]
        err = max(abs(a - b) for a, b in zip(pcm, decoded, strict=True))
        assert err <= 300  # 8000-amplitude tone: G.711 step there is < 256


async def test_wav_format_header_first(gradium_server, h):
    res = await h.synth(gradium_server.url, TEXT, output_format="wav")
    frames = res.of("audio")
    header = base64.b64decode(frames[0]["audio"])
    assert frames[0]["start_s"] == 0 and frames[0]["stop_s"] == 0
    assert header[:4] == b"RIFF" and header[8:16] == b"WAVEfmt "
    assert struct.unpack("<I", header[24:28])[0] == 48000
    assert len(header) == 44
    body = b"".join(base64.b64decode(m["audio"]) for m in frames[1:])
    assert len(body) == 2 * expected_samples(TEXT, 48000)


async def test_default_output_format_is_wav(gradium_server, h):
    ws = await h.open_ws(gradium_server.url)
    await h.send(ws, type="setup")
    await h.send(ws, type="text", text="hi")
    await h.send(ws, type="end_of_stream")
    res = await h.collect(ws)
    assert res.of("ready")[0]["sample_rate"] == 48000
    assert base64.b64decode(res.of("audio")[0]["audio"])[:4] == b"RIFF"


async def test_word_timestamps(gradium_server, h):
    res = await h.synth(
        gradium_server.url, "Hello, brave new world!", output_format="pcm_16000"
    )
    words = res.words()
    assert [w["text"] for w in words] == ["Hello,", "brave", "new", "world!"]
    total = res.of("audio")[-1]["stop_s"]
    prev = -1.0
    for w in words:
        assert prev <= w["start_s"] < w["stop_s"] <= total
        assert isinstance(w["stream_id"], int)
        prev = w["stop_s"]
    # each word is sent no later than the audio frame containing its start
    msgs = res.messages
    for w in words:
        wi = msgs.index(w)
        fi = next(
            i
            for i, m in enumerate(msgs)
            if m["type"] == "audio" and m["stop_s"] > w["start_s"]
        )
        assert wi < fi
    # spans follow the documented synthetic rule (6 chars of tone for "Hello,")
    assert words[0]["stop_s"] == pytest.approx(CHAR_S * 6, abs=1e-4)


async def test_punctuation_only_tokens_are_silent(gradium_server, h):
    res = await h.synth(gradium_server.url, ["Hi", "...", "there"])
    assert [w["text"] for w in res.words()] == ["Hi", "there"]
    assert len(res.audio()) == 2 * expected_samples("Hi there", 16000)


async def test_audio_starts_before_end_of_stream_and_without_it(make_server, h):
    server = await make_server(tail_flush_s=0.1)
    ws = await h.open_ws(server.url)
    await h.send(ws, type="setup", output_format="pcm_16000")
    await h.send(ws, type="text", text=TEXT)
    res = await h.collect(ws, timeout=1.0)
    # never sent end_of_stream: all audio for the text still arrives, no EOS, open
    assert not res.closed
    assert not res.of("end_of_stream")
    assert len(res.audio()) == 2 * expected_samples(TEXT, 16000)
    assert len(res.words()) == 4
    await h.send(ws, type="end_of_stream")
    res2 = await h.collect(ws)
    assert res2.types() == ["end_of_stream"]
    assert res2.close_code == 1000


async def test_partial_frame_held_until_more_text(make_server, h):
    server = await make_server(tail_flush_s=5.0)
    ws = await h.open_ws(server.url)
    await h.send(ws, type="setup", output_format="pcm_16000")
    await h.send(ws, type="text", text="Hello")
    res = await h.collect(ws, timeout=0.4)
    n = expected_samples("Hello", 16000)
    full = (n // 1280) * 1280
    assert len(res.audio()) == 2 * full  # only complete 80 ms frames so far
    await h.send(ws, type="text", text="<flush>")
    res = await h.collect(ws, res, timeout=0.4)
    assert len(res.audio()) == 2 * n  # <flush> releases the held tail
    await ws.close()


async def test_break_tag_inserts_silence(gradium_server, h):
    plain = await h.synth(gradium_server.url, "one two")
    pause = await h.synth(gradium_server.url, 'one <break time="0.5s" /> two')
    assert len(pause.audio()) - len(plain.audio()) == 2 * 8000
    words = pause.words()
    assert words[1]["start_s"] - words[0]["stop_s"] == pytest.approx(
        0.5 + GAP_S, abs=1e-3
    )


async def test_json_config_object_and_string(gradium_server, h):
    cfg = {"temp": 0.3, "padding_bonus": -1.0}
    for value in (cfg, json.dumps(cfg)):
        res = await h.synth(gradium_server.url, "hi", json_config=value)
        assert res.of("ready") and res.of("end_of_stream")
    started = gradium_server.events_of("request_started")
    assert [e.data["json_config"] for e in started] == [cfg, cfg]


async def test_json_config_invalid_string(gradium_server, h):
    res = await h.synth(gradium_server.url, "hi", json_config="{not json")
    assert res.error["code"] == 1003
    assert "json_config" in res.error["message"]
    assert res.close_code == 1003
    assert not res.of("ready")


async def test_unknown_setup_keys_ignored_and_logged(gradium_server, h):
    res = await h.synth(
        gradium_server.url,
        "hi",
        pronunciation_id="pd_1",
        retry_for_s=30.0,
        speed=1.2,
        language="en",
    )
    assert res.of("end_of_stream")
    ev = gradium_server.events_of("ignored_setup_keys")
    assert ev and ev[0].data["keys"] == ["language", "speed"]
    started = gradium_server.events_of("request_started")[0].data
    assert started["pronunciation_id"] == "pd_1" and started["retry_for_s"] == 30.0


async def test_voice_name_and_voice_id(make_server, h):
    server = await make_server(voice_engine="espeak") if espeak_available() else None
    if server is None:
        pytest.skip("espeakng_loader not installed")
    # voice "synthetic" (or voice_id) forces the deterministic voice per request
    for key in ("voice", "voice_id"):
        res = await h.synth(server.url, TEXT, **{key: "synthetic"})
        assert res.audio() == synthesize_synthetic(TEXT, 16000).samples.tobytes()
    # voice_id wins over voice
    res = await h.synth(server.url, TEXT, voice_id="synthetic", voice="Emma")
    assert res.audio() == synthesize_synthetic(TEXT, 16000).samples.tobytes()
    started = server.events_of("request_started")
    assert [e.data["engine"] for e in started] == ["synthetic"] * 3


@pytest.mark.skipif(not espeak_available(), reason="espeakng_loader not installed")
async def test_espeak_voice_speaks(make_server, h):
    server = await make_server(voice_engine="espeak")
    text = "The quick brown fox jumps over the lazy dog."
    res = await h.synth(
        server.url, text, voice_id="vjFyp2BcCyTlUmYb", output_format="pcm_22050"
    )
    samples = h.pcm16(res.audio())
    dur = len(samples) / 22050
    assert 0.04 * len(text) < dur < 0.15 * len(text)
    assert h.rms(samples) > 500
    words = res.words()
    assert [w["text"] for w in words] == text.split()
    assert all(0 <= w["start_s"] <= w["stop_s"] <= dur + 1e-6 for w in words)
    assert all(
        a["start_s"] <= b["start_s"] for a, b in zip(words, words[1:], strict=False)
    )
    assert server.events_of("request_started")[0].data["engine"] == "espeak"


# --- close_ws_on_eos / sequential reuse (§2.4, §4) -----------------------------------------


async def test_close_ws_on_eos_false_keeps_socket_for_sequential_requests(
    gradium_server, h
):
    ws = await h.open_ws(gradium_server.url)
    for text in ("first one", "second"):
        await h.send(ws, type="setup", output_format="pcm_16000", close_ws_on_eos=False)
        await h.send(ws, type="text", text=text)
        await h.send(ws, type="end_of_stream")
        res = await h.collect(ws, until=lambda m: m["type"] == "end_of_stream")
        assert not res.closed
        assert res.types()[0] == "ready"
        assert len(res.audio()) == 2 * expected_samples(text, 16000)
    # unscoped end_of_stream with nothing active closes the reusable socket
    await h.send(ws, type="end_of_stream")
    res = await h.collect(ws, timeout=3)
    assert res.closed and res.close_code == 1000 and res.messages == []
    assert gradium_server.connections_opened == 1


# --- protocol errors (§2.1, §5) ------------------------------------------------------------


@pytest.mark.parametrize(
    "first",
    [{"type": "text", "text": "hello"}, {"type": "end_of_stream"}],
)
async def test_message_before_setup_is_1008(gradium_server, h, first):
    ws = await h.open_ws(gradium_server.url)
    await ws.send(json.dumps(first))
    res = await h.collect(ws)
    assert res.types() == ["error"]
    assert res.error["code"] == 1008
    assert "setup" in res.error["message"]
    assert res.close_code == 1008


async def test_text_after_finished_request_is_1008(gradium_server, h):
    ws = await h.open_ws(gradium_server.url)
    await h.send(ws, type="setup", close_ws_on_eos=False, output_format="pcm_16000")
    await h.send(ws, type="text", text="hi")
    await h.send(ws, type="end_of_stream")
    await h.collect(ws, until=lambda m: m["type"] == "end_of_stream")
    await h.send(ws, type="text", text="no setup for me")
    res = await h.collect(ws)
    assert res.error["code"] == 1008 and res.close_code == 1008


@pytest.mark.parametrize(
    "frame,code",
    [
        (json.dumps({"type": "flush"}), 1003),
        (json.dumps({"type": "cancel"}), 1003),
        (json.dumps({"text": "no type"}), 1003),
        ("this is not json", 1003),
        (json.dumps(["setup"]), 1003),
        (b"\x00\x01binary", 1003),
    ],
)
async def test_malformed_or_unknown_messages_1003(gradium_server, h, frame, code):
    ws = await h.open_ws(gradium_server.url)
    await h.send(ws, type="setup", output_format="pcm_16000")
    await ws.send(frame)
    res = await h.collect(ws)
    assert res.error["code"] == code
    assert res.close_code == code
    logged = gradium_server.received()
    assert len(logged) == 2  # the bad frame is in the log too
    raws = [e.raw for e in gradium_server.log_snapshot() if e.direction == "in"]
    assert raws[1] == frame


@pytest.mark.parametrize("fmt", ["mp3", "opus", "pcm_11025", 16000])
async def test_unknown_output_format_closes_1008(gradium_server, h, fmt):
    res = await h.synth(gradium_server.url, "hi", output_format=fmt)
    assert res.types() == ["error"]
    assert res.error["code"] == 1008 and "output_format" in res.error["message"]
    assert res.close_code == 1008


@pytest.mark.parametrize(
    "field,value",
    [
        ("close_ws_on_eos", "no"),
        ("voice_id", 5),
        ("client_req_id", 7),
        ("retry_for_s", "x"),
    ],
)
async def test_setup_field_type_errors_1003(gradium_server, h, field, value):
    res = await h.synth(gradium_server.url, "hi", **{field: value})
    assert res.error["code"] == 1003 and res.close_code == 1003


async def test_setup_while_request_active_without_ids_is_1008(gradium_server, h):
    ws = await h.open_ws(gradium_server.url)
    await h.send(ws, type="setup", close_ws_on_eos=False)
    await h.send(ws, type="setup", close_ws_on_eos=False)
    res = await h.collect(ws)
    assert res.types() == ["ready", "error"]
    assert res.error["code"] == 1008 and res.close_code == 1008


# --- handshake and keys (§1, §5) ------------------------------------------------------------


async def test_other_paths_404(gradium_server):
    base = gradium_server.url.rsplit("/api/", 1)[0]
    for path in ("/", "/api/speech/asr", "/api/speech/tts2"):
        with pytest.raises(InvalidStatus) as info:
            await connect(base + path, additional_headers={"x-api-key": "k"})
        assert info.value.response.status_code == 404
    assert gradium_server.connections_opened == 0
    assert gradium_server.connection_attempts == 3


@pytest.mark.parametrize(
    "key,message",
    [(None, "missing"), ("", "missing"), ("invalid_key", "revoked or expired")],
)
async def test_rejected_key_error_then_1008(gradium_server, h, key, message):
    ws = await h.open_ws(gradium_server.url, key=key)  # the upgrade succeeds
    res = await h.collect(ws)
    assert res.types() == ["error"]
    assert res.error["code"] == 1008 and message in res.error["message"]
    assert res.close_code == 1008
    assert gradium_server.events_of("open")[0].data["key_ok"] is False


async def test_key_set_policy_and_token_query(make_server, h):
    server = await make_server(api_keys={"gsk_good"})
    ok = await h.synth(server.url, "hi", key="gsk_good")
    assert ok.of("end_of_stream")
    bad = await h.synth(server.url, "hi", key="gsk_other")
    assert bad.error["code"] == 1008 and bad.close_code == 1008
    ws = await connect(server.url + "?token=gsk_good")
    await h.send(ws, type="setup", output_format="pcm_16000")
    await h.send(ws, type="text", text="hi")
    await h.send(ws, type="end_of_stream")
    res = await h.collect(ws)
    assert res.of("end_of_stream") and res.close_code == 1000
    assert [e.data["key_source"] for e in server.events_of("open")] == [
        "header",
        "header",
        "token",
    ]
    # the key itself never reaches the log
    assert "gsk_good" not in repr(server.log_snapshot())
    assert "gsk_other" not in repr(server.log_snapshot())


async def test_handshake_delay_knob_zero_is_fast(make_server, h):
    import time

    server = await make_server(latency=LatencyModel.instant())
    t0 = time.monotonic()
    ws = await h.open_ws(server.url)
    assert time.monotonic() - t0 < 0.1
    await ws.close()
