"""The benchmarks run, at tiny sizes, and their report is whole: so that they never rot.

No thresholds: the figures of a smoke run mean nothing; what is checked is that every
benchmark ran, that BENCHMARKS.md has every section and that every figure is a number.
The peers' environment (``.venv-peers``) is pointed away, so the quix-streams peer must be
reported as skipped, not failed, and the run must not need quix-streams.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def bench_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_benchmark_runs_in_smoke_mode_and_reports_numbers(tmp_path: Path) -> None:
    out = tmp_path / "report"
    env = {**os.environ, "BENCH_PEERS_PYTHON": str(tmp_path / "no-peers-env" / "python")}
    done = subprocess.run(
        [sys.executable, str(BENCH / "run_all.py"), "--smoke", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    results = json.loads((out / "results.json").read_text())
    assert results["mode"] == "smoke"
    benchmarks = results["benchmarks"]
    assert set(benchmarks) == {"core", "burst", "memory", "worker", "latency", "fuzz", "challenger"}
    for name, run in benchmarks.items():
        assert run["status"] == "ok", (name, run.get("error"))

    peers = benchmarks["worker"]["report"]["peers"]
    assert peers["quix"]["status"] == "skipped"
    assert peers["faust"]["status"] == "ok", peers["faust"]
    assert peers["faust"]["events"] == benchmarks["worker"]["report"]["events"]

    figures = results["figures"]
    expected = (
        "core.simulated.replay_events_per_s",
        "core.adversarial.replay_events_per_s",
        "core.stress.replay_events_per_s",
        "outputs.flag_build_encode_us",
        "outputs.decision_build_encode_us",
        "burst.in_slices.seconds_per_million",
        "burst.in_slices.longest_slice_seconds",
        "memory.all_live.resident_bytes_per_user",
        "memory.tenth_live.resident_bytes_per_user",
        "memory.all_live.serialised_mean",
        "worker.raw_events_per_s",
        "worker.worker_events_per_s",
        "peers.faust.ratio_to_raw",
        "fuzz.cases_per_s",
        "challenger.replay.median_ratio",
        "challenger.worker.median_ratio",
    )
    for name in expected:
        assert name in figures, name
    assert any(name.startswith("latency.") and name.endswith(".p99_ms") for name in figures)
    for name, value in figures.items():
        assert isinstance(value, int | float) and not isinstance(value, bool), (name, value)
        assert math.isfinite(value), (name, value)
    assert figures["burst.in_slices.slices"] >= 2  # 2,000 deadlines in slices of 500

    targets = results["targets"]
    assert len(targets) >= 9
    for target in targets:
        assert target["measured"] is None or isinstance(target["measured"], int | float)
        assert target["met"] in (True, False, None)
        if target["met"] is False:
            assert target["reason"], target

    markdown = (out / "BENCHMARKS.md").read_text()
    for section in bench_module("report").SECTIONS:
        assert f"\n## {section}\n" in markdown, section
    assert (out / "latency-vs-load.png").read_bytes().startswith(b"\x89PNG")
    assert "latency-vs-load.png" in markdown
