"""The core stays pure: no I/O frameworks, no clock, no logging, no randomness."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[1] / "workers" / "core"
BANNED_MODULES = {
    "faust",
    "mode",
    "aiokafka",
    "kafka",
    "prometheus_client",
    "time",
    "random",
    "logging",
    "os",
    "socket",
    "asyncio",
    "rocksdict",
    "workers.stream",
    "workers.metrics",
    "workers.settings",
}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}
CORE_FILES = sorted(CORE.rglob("*.py"))


def test_core_has_modules() -> None:
    assert len(CORE_FILES) >= 5


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_imports_no_io_framework(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    offending = {
        name
        for name in imported
        for banned in BANNED_MODULES
        if name == banned or name.startswith(banned + ".")
    }
    assert not offending, f"{path.name} imports {sorted(offending)}"


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(CORE)))
def test_core_reads_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    calls = [
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in CLOCK_CALLS
    ]
    assert not calls, f"{path.name} calls {calls}"


def test_the_ban_detects_a_violation(tmp_path: Path) -> None:
    """The scanner itself must catch an offending import and a clock read."""
    bad = tmp_path / "bad.py"
    bad.write_text("import aiokafka\nfrom datetime import datetime\nx = datetime.now()\n")
    with pytest.raises(AssertionError):
        test_core_imports_no_io_framework(bad)
    with pytest.raises(AssertionError):
        test_core_reads_no_clock(bad)
