"""Multiplexing on one socket (reference §4): concurrent requests, scoped and unscoped
end_of_stream, per-request errors."""

from __future__ import annotations

from gradium_server import LatencyModel, Limits, synthesize_synthetic

LONG_A = "alpha bravo charlie delta echo foxtrot golf hotel"
LONG_B = "india juliet kilo lima mike november oscar papa"


def pcm(text: str, rate: int = 16000) -> bytes:
    return synthesize_synthetic(text, rate).samples.tobytes()


async def setup(h, ws, cid, **kw):
    kw.setdefault("output_format", "pcm_16000")
    await h.send(ws, type="setup", client_req_id=cid, close_ws_on_eos=False, **kw)


async def test_two_requests_interleave(make_server, h):
    server = await make_server(latency=LatencyModel(0, 0, 0, rtf=0.1))
    ws = await h.open_ws(server.url)
    await setup(h, ws, "a")
    await setup(h, ws, "b")
    await h.send(ws, type="text", text=LONG_A, client_req_id="a")
    await h.send(ws, type="text", text=LONG_B, client_req_id="b")
    await h.send(ws, type="end_of_stream", client_req_id="a")
    await h.send(ws, type="end_of_stream", client_req_id="b")
    eos = set()

    def both_done(m):
        if m["type"] == "end_of_stream":
            eos.add(m.get("client_req_id"))
        return eos == {"a", "b"}

    res = await h.collect(ws, until=both_done)
    assert not res.closed  # close_ws_on_eos false
    owners = [m["client_req_id"] for m in res.of("audio")]
    switches = sum(1 for x, y in zip(owners, owners[1:], strict=False) if x != y)
    assert switches >= 4  # truly interleaved, not one after the other
    assert res.audio("a") == pcm(LONG_A)
    assert res.audio("b") == pcm(LONG_B)
    # every response of a request carries its client_req_id
    for cid in ("a", "b"):
        types = res.types(cid)
        assert types[0] == "ready" and types[-1] == "end_of_stream"
        assert len(res.words(cid)) == 8
    assert all("client_req_id" in m for m in res.messages)
    # each request's timeline starts at 0
    assert res.of("audio", "b")[0]["start_s"] == 0.0
    await h.send(ws, type="end_of_stream")
    tail = await h.collect(ws, timeout=3)
    assert tail.closed and tail.close_code == 1000


async def test_unscoped_eos_waits_for_all_requests_then_closes(make_server, h):
    server = await make_server(latency=LatencyModel(0, 0, 0, rtf=0.05))
    ws = await h.open_ws(server.url)
    await setup(h, ws, "a")
    await setup(h, ws, "b")
    await h.send(ws, type="text", text=LONG_A, client_req_id="a")
    await h.send(ws, type="text", text=LONG_B, client_req_id="b")
    await h.send(ws, type="end_of_stream", client_req_id="a")
    await h.send(ws, type="end_of_stream", client_req_id="b")
    await h.send(ws, type="end_of_stream")  # close once both have finished
    res = await h.collect(ws)
    assert res.closed and res.close_code == 1000
    assert {m["client_req_id"] for m in res.of("end_of_stream")} == {"a", "b"}
    assert res.audio("a") == pcm(LONG_A) and res.audio("b") == pcm(LONG_B)
    assert res.types()[-1] == "end_of_stream"


async def test_unscoped_eos_ends_the_single_request_without_id(gradium_server, h):
    ws = await h.open_ws(gradium_server.url)
    await h.send(ws, type="setup", output_format="pcm_16000", close_ws_on_eos=False)
    await h.send(ws, type="text", text="solo")
    await h.send(ws, type="end_of_stream")
    res = await h.collect(ws, until=lambda m: m["type"] == "end_of_stream")
    assert res.types()[-1] == "end_of_stream" and not res.closed
    assert "client_req_id" not in res.of("end_of_stream")[0]
    await h.send(ws, type="end_of_stream")  # now nothing is active: close
    res = await h.collect(ws, timeout=3)
    assert res.close_code == 1000


async def test_reused_active_client_req_id_is_scoped_error(make_server, h):
    server = await make_server(latency=LatencyModel(0, 0, 0, rtf=0.05))
    ws = await h.open_ws(server.url)
    await setup(h, ws, "a")
    await h.send(ws, type="text", text=LONG_A, client_req_id="a")
    await setup(h, ws, "a")  # still active -> error for the new setup only
    await h.send(ws, type="end_of_stream", client_req_id="a")
    res = await h.collect(ws, until=lambda m: m["type"] == "end_of_stream")
    errors = res.of("error")
    assert len(errors) == 1
    assert errors[0]["code"] == 1008 and errors[0]["client_req_id"] == "a"
    assert "already active" in errors[0]["message"]
    assert len(res.of("ready")) == 1
    assert res.audio("a") == pcm(LONG_A)  # the original request is unaffected
    assert not res.closed
    # once finished, the id may be used again
    await setup(h, ws, "a")
    await h.send(ws, type="text", text="again", client_req_id="a")
    await h.send(ws, type="end_of_stream", client_req_id="a")
    res = await h.collect(ws, until=lambda m: m["type"] == "end_of_stream")
    assert res.audio("a") == pcm("again")
    await ws.close()


async def test_text_for_unknown_client_req_id(gradium_server, h):
    ws = await h.open_ws(gradium_server.url)
    await setup(h, ws, "a")
    await h.send(ws, type="text", text="ghost", client_req_id="zzz")
    await h.send(ws, type="end_of_stream", client_req_id="yyy")
    await h.send(ws, type="text", text="real", client_req_id="a")
    await h.send(ws, type="end_of_stream", client_req_id="a")
    res = await h.collect(ws, until=lambda m: m["type"] == "end_of_stream")
    errs = res.of("error")
    assert [(e["client_req_id"], e["code"]) for e in errs] == [
        ("zzz", 1008),
        ("yyy", 1008),
    ]
    assert "unknown client_req_id" in errs[0]["message"]
    assert res.audio("a") == pcm("real") and not res.closed
    await ws.close()


async def test_unknown_output_format_scoped_when_multiplexed(gradium_server, h):
    ws = await h.open_ws(gradium_server.url)
    await setup(h, ws, "bad", output_format="flac")
    await setup(h, ws, "good")
    await h.send(ws, type="text", text="fine", client_req_id="good")
    await h.send(ws, type="end_of_stream", client_req_id="good")
    res = await h.collect(ws, until=lambda m: m["type"] == "end_of_stream")
    assert res.of("error")[0] == {
        "type": "error",
        "message": "unsupported output_format 'flac'",
        "code": 1008,
        "client_req_id": "bad",
    }
    assert not res.of("ready", "bad")
    assert res.audio("good") == pcm("fine") and not res.closed
    await ws.close()


async def test_text_after_scoped_eos_is_terminal_for_that_request(make_server, h):
    server = await make_server(latency=LatencyModel(0, 0, 0, rtf=0.05))
    ws = await h.open_ws(server.url)
    await setup(h, ws, "a")
    await setup(h, ws, "b")
    await h.send(ws, type="text", text=LONG_A, client_req_id="a")
    await h.send(ws, type="end_of_stream", client_req_id="a")
    await h.send(ws, type="text", text="late", client_req_id="a")
    await h.send(ws, type="text", text="bee", client_req_id="b")
    await h.send(ws, type="end_of_stream", client_req_id="b")
    res = await h.collect(ws, until=lambda m: m["type"] == "end_of_stream")
    err = res.of("error", "a")[0]
    assert err["code"] == 1008 and "after end_of_stream" in err["message"]
    # nothing more for "a" after its error; "b" completes
    a_msgs = [m for m in res.messages if m.get("client_req_id") == "a"]
    assert a_msgs[-1]["type"] == "error"
    assert res.of("end_of_stream")[0]["client_req_id"] == "b"
    assert res.audio("b") == pcm("bee")
    await ws.close()


async def test_max_concurrent_requests(make_server, h):
    server = await make_server(limits=Limits(max_concurrent=2))
    ws = await h.open_ws(server.url)
    for cid in ("a", "b", "c"):
        await setup(h, ws, cid)
    for cid in ("a", "b"):
        await h.send(ws, type="text", text=cid * 3, client_req_id=cid)
        await h.send(ws, type="end_of_stream", client_req_id=cid)
    eos = set()

    def done(m):
        if m["type"] == "end_of_stream":
            eos.add(m["client_req_id"])
        return eos == {"a", "b"}

    res = await h.collect(ws, until=done)
    err = res.of("error")
    assert len(err) == 1
    assert err[0]["client_req_id"] == "c" and err[0]["code"] == 1008
    assert err[0]["message"] == "too many concurrent requests"
    assert len(res.of("ready")) == 2
    # slots free up when requests finish
    await setup(h, ws, "c")
    res = await h.collect(ws, until=lambda m: m["type"] == "ready")
    assert res.of("ready", "c")
    await ws.close()


async def test_close_ws_on_eos_true_in_a_multiplexed_request_closes_socket(
    gradium_server, h
):
    ws = await h.open_ws(gradium_server.url)
    await setup(h, ws, "keep")
    await h.send(ws, type="setup", client_req_id="last", output_format="pcm_16000")
    await h.send(ws, type="text", text="bye", client_req_id="last")
    await h.send(ws, type="end_of_stream", client_req_id="last")
    res = await h.collect(ws)
    assert res.of("end_of_stream", "last") and res.close_code == 1000


async def test_mixed_formats_on_one_socket(gradium_server, h):
    """[conflict] in the reference; this server allows a format per request."""
    ws = await h.open_ws(gradium_server.url)
    await setup(h, ws, "lo", output_format="pcm_8000")
    await setup(h, ws, "hi", output_format="pcm_48000")
    for cid in ("lo", "hi"):
        await h.send(ws, type="text", text="same words", client_req_id=cid)
        await h.send(ws, type="end_of_stream", client_req_id=cid)
    await h.send(ws, type="end_of_stream")
    res = await h.collect(ws)
    assert res.of("ready", "lo")[0]["sample_rate"] == 8000
    assert res.of("ready", "hi")[0]["sample_rate"] == 48000
    assert len(res.audio("hi")) == 6 * len(res.audio("lo"))
    assert res.close_code == 1000
