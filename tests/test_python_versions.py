"""What differs between the supported Pythons (3.10 to 3.13): timeouts.

Before 3.11 ``asyncio.wait_for`` raises ``asyncio.TimeoutError``, a class of its
own; from 3.11 that name is an alias of the builtin ``TimeoutError``. A handler
that names only the builtin therefore works on 3.11+ and misses on 3.10.
``bash scripts/test-matrix.sh`` runs the whole suite on each version.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import threading
import time
from pathlib import Path

from harness import ext_module

ROOT = Path(__file__).resolve().parents[1]
# The package, the local server and the stand-ins, the demo, the benchmarks, the tests.
FOLDERS = (".", "standalone", "examples", "bench", "tests")


async def test_a_dump_still_writing_at_the_end_is_recorded_not_raised(
    monkeypatch, tmp_path
):
    """The ending closes the request's dump (``_end_dump``): when the disk is still
    busy after ``timeout_s``, ``close`` returns and records why in ``error`` (the
    ending logs it as a dump failure) instead of raising out of the ending. On 3.10
    ``wait_for``'s timeout is not the builtin TimeoutError: a handler naming only
    the builtin let it escape."""
    DumpWriter = ext_module("extension").DumpWriter
    real_open = builtins.open
    disk_busy = threading.Event()
    release = threading.Event()

    class StuckFile:
        def __init__(self, f):
            self._f = f

        def write(self, data):
            disk_busy.set()
            release.wait(10)
            return self._f.write(data)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._f.close()

    def open_(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return StuckFile(f) if "gradium_dump_" in str(file) else f

    monkeypatch.setattr(builtins, "open", open_)
    writer = DumpWriter(str(tmp_path / "gradium_dump_r1.pcm"))
    try:
        assert writer.write(b"\x01\x00" * 160)
        assert await asyncio.to_thread(disk_busy.wait, 5)
        started = time.monotonic()
        await writer.close(timeout_s=0.3)  # raised asyncio.TimeoutError on 3.10
        waited = time.monotonic() - started
        assert waited >= 0.25, waited  # it did wait for the disk first
        assert isinstance(writer.error, TimeoutError), writer.error
        assert "dump still writing after 0.3 s" in str(writer.error)
        assert writer.write(b"\x02\x00") is False  # the dump has stopped
    finally:
        release.set()
    # the thread finishes what it was given, then the file is complete and closed
    await asyncio.wait_for(asyncio.shield(writer._finished), 5)
    assert (tmp_path / "gradium_dump_r1.pcm").read_bytes() == b"\x01\x00" * 160


def _catches(node: ast.AST) -> list[str] | None:
    """The exception names a handler catches: ``except X``/``except (X, Y)``,
    ``suppress(X, ...)``, ``pytest.raises(X)``; None for any other node."""
    if isinstance(node, ast.ExceptHandler) and node.type is not None:
        caught = [node.type]
    elif isinstance(node, ast.Call) and node.args:
        func = ast.unparse(node.func)
        if func.split(".")[-1] == "suppress":
            caught = list(node.args)
        elif func in ("pytest.raises", "raises"):
            caught = [node.args[0]]
        else:
            return None
    else:
        return None
    names: list[str] = []
    for expr in caught:
        parts = expr.elts if isinstance(expr, ast.Tuple) else [expr]
        names += [ast.unparse(p) for p in parts]
    return names


def _builtin_only_timeouts(source: str) -> list[int]:
    """Lines whose handler names the builtin TimeoutError without
    asyncio.TimeoutError: on 3.10 it misses asyncio.wait_for's timeout."""
    return sorted(
        node.lineno
        for node in ast.walk(ast.parse(source))
        if (names := _catches(node)) is not None
        and "TimeoutError" in names
        and "asyncio.TimeoutError" not in names
    )


def test_the_check_sees_each_form_of_handler():
    """Control for the scan below: each form is caught, the right ones pass."""
    wrong = """
try:
    pass
except TimeoutError:
    pass
try:
    pass
except (OSError, TimeoutError) as e:
    pass
with contextlib.suppress(TimeoutError):
    pass
with suppress(ValueError, TimeoutError):
    pass
with pytest.raises(TimeoutError):
    pass
"""
    assert _builtin_only_timeouts(wrong) == [4, 8, 10, 12, 14]
    right = """
try:
    pass
except asyncio.TimeoutError:
    pass
try:
    pass
except (asyncio.TimeoutError, TimeoutError):
    pass
with contextlib.suppress(asyncio.TimeoutError):
    pass
with pytest.raises(asyncio.TimeoutError):
    pass
raise TimeoutError("ours")
"""
    assert _builtin_only_timeouts(right) == []


def test_no_timeout_is_caught_only_as_the_builtin():
    """Every handler that names TimeoutError also names asyncio.TimeoutError (the
    builtin alone is right only from 3.11), in every Python file we ship or run."""
    files = [
        p
        for folder in FOLDERS
        for p in (
            (ROOT / folder).glob("*.py")
            if folder == "."
            else (ROOT / folder).rglob("*.py")
        )
    ]
    assert len(files) > 50, files  # the scan did find the sources
    wrong = [
        f"{p.relative_to(ROOT)}:{line}"
        for p in files
        for line in _builtin_only_timeouts(p.read_text(encoding="utf-8"))
    ]
    assert not wrong, (
        "catch asyncio.TimeoutError (on 3.10 it is not TimeoutError): "
        + ", ".join(wrong)
    )
