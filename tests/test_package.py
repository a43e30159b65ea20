"""The package files: manifest, property.json, the example graph, the README table."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ext_module

CLIENT_PARAM_KEYS = ext_module("config").CLIENT_PARAM_KEYS
GradiumTTSConfig = ext_module("config").GradiumTTSConfig

ROOT = Path(__file__).resolve().parents[1]
NAME = "gradium_tts_python"
PLACEHOLDER = re.compile(r"^\$\{env:([A-Za-z_][A-Za-z0-9_]*)(\|([^}]*))?\}$")


def load(path: str) -> dict:
    return json.loads((ROOT / path).read_text())


def resolve(value, env: dict[str, str]):
    """Resolve ${env:VAR|default} the way TEN does (whole-string placeholders only)."""
    if isinstance(value, dict):
        return {k: resolve(v, env) for k, v in value.items()}
    if isinstance(value, str) and (m := PLACEHOLDER.match(value)):
        if m.group(1) in env:
            return env[m.group(1)]
        assert m.group(2) is not None, f"{value} has no default: TEN would exit"
        return m.group(3)
    return value


def tracked_files() -> list[str]:
    return [
        str(p.relative_to(ROOT))
        for p in ROOT.rglob("*")
        if p.is_file() and not any(_untracked(part) for part in p.parts)
    ]


def _untracked(part: str) -> bool:
    """.git, .ten, and the virtualenvs: .venv and test-matrix.sh's .venv-X.Y."""
    return part in {".git", ".ten", ".venv"} or part.startswith(".venv-")


def test_manifest_identity_and_dependencies():
    manifest = load("manifest.json")
    assert manifest["type"] == "extension" and manifest["name"] == NAME
    deps = {(d["type"], d["name"]): d["version"] for d in manifest["dependencies"]}
    assert deps == {
        ("system", "ten_runtime_python"): "0.11",
        ("system", "ten_ai_base"): "0.7",
    }
    uris = [i["import_uri"] for i in manifest["api"]["interface"]]
    assert uris == ["../../system/ten_ai_base/api/tts-interface.json"]
    addon = (ROOT / "addon.py").read_text()
    assert f'register_addon_as_extension("{NAME}")' in addon


def test_package_ships_only_the_extension():
    include = load("manifest.json")["package"]["include"]
    shipped = {
        f for f in tracked_files() if any(fnmatch.fnmatch(f, pat) for pat in include)
    }
    assert {
        "extension.py",
        "gradium_tts.py",
        "config.py",
        "addon.py",
        "__init__.py",
    } <= shipped
    for path in shipped:
        assert not path.startswith(
            ("standalone/", "tests/", "bench/", "examples/", "scripts/")
        ), path
    for pattern in include:  # every entry names a file that exists
        assert any(fnmatch.fnmatch(f, pattern) for f in tracked_files()), pattern


# Keys config.py also reads inside params: an alias of url, and the top-level
# settings (top level wins). Declared in the manifest so TEN checks their types too.
PARAM_ALIASES = {"base_url", "dump", "dump_path", "enable_words"}


def test_every_param_has_a_schema_except_json_config():
    schema = load("manifest.json")["api"]["property"]["properties"]
    declared = set(schema["params"]["properties"])
    typed_fields = set(GradiumTTSConfig.model_fields) - {
        "dump",
        "dump_path",
        "enable_words",
        "extra_setup",
        "ignored_params",
        "json_config",  # object or string: TEN's schema has no union type
    }
    assert declared == typed_fields | PARAM_ALIASES
    assert {"dump", "dump_path", "enable_words"} <= set(schema)
    assert schema["params"]["properties"]["sample_rate"]["type"] == "int64"


def test_property_json_defaults_are_safe_without_the_env_variable():
    props = resolve(load("property.json"), env={})
    assert props["params"]["api_key"] == ""  # an unset key never kills the app
    props["params"]["api_key"] = "k"
    assert GradiumTTSConfig.from_properties(props).url.startswith("wss://")


def test_example_graph_tts_node_matches_the_config():
    graph = load("examples/voice_assistant_gradium/property.json")
    (predefined,) = graph["ten"]["predefined_graphs"]
    assert predefined["name"] == "voice_assistant_gradium"
    nodes = predefined["graph"]["nodes"]
    (tts,) = [n for n in nodes if n["addon"] == NAME]
    assert tts["name"] == "tts"
    known = set(GradiumTTSConfig.model_fields) | CLIENT_PARAM_KEYS
    for key in tts["property"]["params"]:
        assert key in known, f"graph param {key!r} is not a config key"
    props = resolve(tts["property"], env={"GRADIUM_API_KEY": "k"})
    config = GradiumTTSConfig.from_properties(props)
    assert config.extra_setup == {} and config.ignored_params == []
    # The TTS outputs are wired: audio to the RTC node, audio start/end to control.
    wired = json.dumps(predefined["graph"]["connections"])
    assert '"pcm_frame", "source": [{"extension": "tts"}]' in wired
    assert '"tts_audio_end", "source": [{"extension": "tts"}]' in wired


@pytest.mark.parametrize("folder", ["tests/configs", "tests/configs_local"])
def test_guarder_config_placeholders_all_have_defaults(folder):
    for path in sorted((ROOT / folder).glob("*.json")):
        resolve(json.loads(path.read_text()), env={})  # asserts inside


def test_readme_documents_every_param_and_no_other():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `params\.([a-z_]+)`", readme, flags=re.M))
    schema = load("manifest.json")["api"]["property"]["properties"]["params"][
        "properties"
    ]
    assert documented == (set(schema) - PARAM_ALIASES) | {"json_config"}
    for top in ("dump", "dump_path", "enable_words"):
        assert f"| `{top}` |" in readme
    assert "`base_url` is accepted as an alias" in readme


def test_readme_commands_are_the_ones_ci_runs():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test.sh" in readme and "bash scripts/test.sh" in ci
    assert "bash scripts/demo.sh" in readme and "bash scripts/demo.sh" in ci


# ----------------------------------------------------- pytest settings stay ours

_GUARDER_CONFTEST = """
def pytest_addoption(parser):
    parser.addoption("--extension_name", action="store", required=True)
    parser.addoption("--config_dir", action="store", required=True)
"""

_GUARDER_REPORT = """
import json, sys


def test_report(request):
    c = request.config
    print("REPORT " + json.dumps({
        "inipath": str(c.inipath) if c.inipath else None,
        "ini_timeout": c.getini("timeout"),
        "option_timeout": c.getoption("timeout"),
        "effective_timeout": getattr(c, "_env_timeout", None),
        "asyncio_mode": str(c.getoption("asyncio_mode") or c.getini("asyncio_mode")),
        "addopts": c.getini("addopts"),
        "our_server_plugin": c.pluginmanager.has_plugin("gradium_server.pytest_plugin"),
        "tenhost_imported": "tenhost" in sys.modules,
    }))
"""


def _run_guarder_like(tmp_path: Path, package: Path) -> dict:
    """Run a throwaway suite the way TEN's tts_guarder is run on this package."""
    guarder = tmp_path / "tts_guarder"
    (guarder / "tests").mkdir(parents=True)
    (guarder / "tests" / "conftest.py").write_text(_GUARDER_CONFTEST)
    (guarder / "tests" / "test_report.py").write_text(_GUARDER_REPORT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/",
            "--extension_name",
            NAME,
            "--config_dir",
            str(package / "tests" / "configs_local"),
            "-s",
            "-p",
            "no:cacheprovider",
        ],
        cwd=guarder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [
        x.split("REPORT ", 1)[1] for x in proc.stdout.splitlines() if "REPORT " in x
    ]
    assert len(lines) == 1, proc.stdout + proc.stderr
    return json.loads(lines[0])


def _pytest_table(path: str | None) -> bool:
    return path is not None and "[tool.pytest" in Path(path).read_text()


def test_our_pytest_settings_do_not_leak_into_a_guarder_run(tmp_path):
    report = _run_guarder_like(tmp_path, ROOT)
    # pytest may still name our pyproject.toml as its (settings-free) config file
    # when nothing else is found: what matters is that no setting comes from it.
    assert not _pytest_table(report["inipath"])
    assert report["ini_timeout"] == "" and report["option_timeout"] is None
    assert report["effective_timeout"] is None  # no 120 s timeout
    assert report["asyncio_mode"] == "strict"  # pytest-asyncio's default
    assert report["addopts"] == []
    # tests/conftest.py is loaded (a parent folder of --config_dir) but stays inert.
    assert report["our_server_plugin"] is False
    assert report["tenhost_imported"] is False


def test_the_guarder_like_run_sees_a_leaking_pytest_table(tmp_path):
    """Control: the same run does pick up a package's pytest table (the old bug)."""
    leaky = tmp_path / "leaky_tts_python"
    (leaky / "tests" / "configs_local").mkdir(parents=True)
    (leaky / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\ntimeout = 120\nasyncio_mode = "auto"\n'
    )
    report = _run_guarder_like(tmp_path, leaky)
    assert report["inipath"] == str(leaky / "pyproject.toml")
    assert report["effective_timeout"] == 120.0
    assert report["asyncio_mode"] == "auto"


def test_pyproject_has_no_pytest_table():
    assert "[tool.pytest" not in (ROOT / "pyproject.toml").read_text()


def test_our_own_runs_get_auto_mode_and_the_timeout():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/test_config.py", "--collect-only"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # pytest-asyncio formats its mode enum with f"{mode}": "auto" on Python 3.10,
    # "Mode.AUTO" from 3.11 (format() of a str-mixin enum changed there).
    assert re.search(r"^asyncio: mode=(Mode\.AUTO|auto),", proc.stdout, re.M)
    assert "timeout: 120.0s" in proc.stdout


def test_stubs_readme_names_only_tests_that_exist():
    """standalone/stubs/README.md maps runtime claims to tests: every name is real."""
    text = (ROOT / "standalone" / "stubs" / "README.md").read_text()
    refs = 0
    for row in text.splitlines():
        if not row.startswith("| 1.") and not row.startswith("| 2."):
            continue
        current = None
        found = re.findall(r"`((?:tests/)?test_[a-z_]+\.py)?::(test_[a-z0-9_]+)`", row)
        assert found or "Not modelled" in row, row
        for file, name in re.findall(
            r"`((?:tests/)?test_[a-z_]+\.py)?::(test_[a-z0-9_]+)`", row
        ):
            if file:
                current = ROOT / (
                    file if file.startswith("tests/") else f"tests/standin/{file}"
                )
            assert current is not None, row
            assert re.search(rf"^(async )?def {name}\(", current.read_text(), re.M), (
                f"{current.name}::{name}"
            )
            refs += 1
    assert refs >= 60
