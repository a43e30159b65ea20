"""Unit checks of the server's building blocks (no sockets)."""

from __future__ import annotations

from array import array

import pytest
from gradium_server import FORMATS, ServerConfig
from gradium_server.formats import alaw_encode, ulaw_encode, wav_header
from gradium_server.textparse import extract_markers, split_parts
from gradium_server.voices import resample_linear, synthesize_synthetic


def test_g711_reference_points():
    # ITU-T G.711: silence and full-scale code words
    assert ulaw_encode(array("h", [0, 32767, -32768])) == bytes([0xFF, 0x80, 0x00])
    assert alaw_encode(array("h", [0, 32767, -32768])) == bytes([0xD5, 0xAA, 0x2A])
    # monotonic in magnitude for positive input (µ-law codes decrease)
    codes = ulaw_encode(array("h", range(0, 32000, 1000)))
    assert list(codes) == sorted(codes, reverse=True)


def test_format_table():
    assert FORMATS["pcm"].sample_rate == 48000 and FORMATS["pcm"].frame_size == 3840
    assert FORMATS["ulaw_8000"].bytes_per_sample == 1
    assert FORMATS["mulaw_8000"].encoding == "ulaw"
    assert {f for f in FORMATS if f.startswith("pcm_")} == {
        "pcm_8000",
        "pcm_16000",
        "pcm_22050",
        "pcm_24000",
        "pcm_44100",
        "pcm_48000",
    }
    assert "opus" not in FORMATS
    header = wav_header(24000)
    assert len(header) == 44 and header[:4] == b"RIFF"


def test_resample_linear():
    src = array("h", [0, 1000, 2000, 3000])
    assert list(resample_linear(src, 4, 8)) == [
        0,
        500,
        1000,
        1500,
        2000,
        2500,
        3000,
        3000,
    ]
    assert len(resample_linear(array("h", [0] * 22050), 22050, 16000)) == 16000
    assert resample_linear(src, 8000, 8000) == src


def test_synthetic_voice_pure_and_rate_scaled():
    a = synthesize_synthetic("same text", 16000)
    b = synthesize_synthetic("same text", 16000)
    assert a.samples == b.samples and a.words == b.words
    c = synthesize_synthetic("same text", 48000)
    assert abs(len(c.samples) - 3 * len(a.samples)) <= 4
    assert (
        synthesize_synthetic("word", 16000).samples
        != synthesize_synthetic("bird", 16000).samples
    )
    assert synthesize_synthetic("", 16000).samples == array("h")


def test_markers_and_tags():
    clean, markers = extract_markers("a [[fault:error_1008:3]]b[[fault:refuse]]")
    assert markers == [("error_1008", "3"), ("refuse", None)]
    assert "[[" not in clean
    parts = split_parts(
        'one <flush> two <break time="300ms"/> three <break time="9s" />'
    )
    assert [(p.kind, p.text.strip(), p.seconds) for p in parts] == [
        ("speech", "one", 0.0),
        ("flush", "", 0.0),
        ("speech", "two", 0.0),
        ("break", "", 0.3),
        ("speech", "three", 0.0),
        ("break", "", 2.0),  # clamped to the documented 0.1-2.0 s
    ]


def test_key_policy():
    cfg = ServerConfig.for_tests()
    assert cfg.key_ok("gsk_anything") == (True, "")
    assert cfg.key_ok("invalid_key")[0] is False
    assert cfg.key_ok("")[0] is False and cfg.key_ok(None)[0] is False
    strict = ServerConfig.for_tests(api_keys={"a"})
    assert strict.key_ok("a")[0] and not strict.key_ok("b")[0]
    with pytest.raises(ValueError):
        ServerConfig(voice_engine="festival")
