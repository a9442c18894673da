"""Run every benchmark, each in its own process, and write BENCHMARKS.md and results.json.

    python bench/run_all.py            # full sizes (what `make bench` runs): BENCHMARKS.md,
                                       # bench/results.json, bench/latency-vs-load.png
    python bench/run_all.py --smoke --out DIR   # tiny sizes, a few minutes at most: CI

Each benchmark prints its report as JSON (``--json``); one that fails is reported as failed
with the end of its error output, and the others still run. The peers that need
``.venv-peers`` (``make install-peers``) are reported as skipped when it is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from machine import environment_versions, facts
from report import render_markdown, write_chart

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


@dataclass(frozen=True)
class Plan:
    name: str
    script: str
    full: str
    smoke: str
    timeout_seconds: int = 900


PLANS = (
    Plan(
        "core",
        "core_bench.py",
        "--sim-users 2000 --adversarial-users 15000 --stress-events 100000 --stress-users 10000",
        "--sim-users 40 --sim-days 20 --adversarial-users 200 --stress-events 2000 "
        "--stress-users 200 --output-repeats 200",
    ),
    Plan("burst", "burst_bench.py", "--users 100000", "--users 2000 --live-users 500 --slice 500"),
    Plan("memory", "memory_bench.py", "--users 10000 --days 45", "--users 200 --days 10"),
    Plan(
        "worker",
        "worker_bench.py",
        "--users 2000 --days 100 --partitions 6 --peers faust,quix --peer-events 10000",
        "--users 100 --days 20 --partitions 2 --peers faust,quix",
        timeout_seconds=1200,
    ),
    Plan(
        "latency",
        "latency_bench.py",
        "--rates 2500,5000,10000,20000,37500 --events 50000 --align-waits ''",
        "--rates 4000 --events 2000 --users 200 --days 20 --align-waits ''",
    ),
    Plan("fuzz", "fuzz_decode.py", "--cases 200000 --seed 1", "--cases 2000 --seed 1"),
    Plan(
        "challenger",
        "challenger_bench.py",
        "--users 4000 --worker-users 2000 --days 180 --pairs 3",
        "--users 100 --worker-users 100 --days 20 --pairs 1 --partitions 2",
        timeout_seconds=1200,
    ),
)


def run_plan(plan: Plan, smoke: bool) -> dict[str, Any]:
    """One benchmark in its own process: its JSON report, or how it failed."""
    arguments = shlex.split(plan.smoke if smoke else plan.full)
    command = [sys.executable, str(BENCH / plan.script), *arguments]
    command.append("--json")
    shown = shlex.join(["python", f"bench/{plan.script}", *command[2:]])
    print(f"running {shown}", flush=True)
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=plan.timeout_seconds,
            check=False,
        )
    except subprocess.TimeoutExpired:
        error = f"no report within {plan.timeout_seconds} s"
        return {"status": "failed", "command": shown, "error": error}
    seconds = round(time.monotonic() - started, 1)
    outcome: dict[str, Any] = {"command": shown, "wall_seconds": seconds}
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        report = None
    if done.returncode != 0 or report is None:
        tail = (done.stderr or done.stdout or "")[-2000:]
        return {**outcome, "status": "failed", "error": f"exit status {done.returncode}: {tail}"}
    print(f"  done in {seconds} s", flush=True)
    return {**outcome, "status": "ok", "report": report}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, no thresholds")
    parser.add_argument(
        "--out", type=Path, help="write every file here (default: the repository's places)"
    )
    parser.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    args = parser.parse_args()
    wanted = [name for name in args.only.split(",") if name]
    if args.out is None:
        markdown, results, chart = ROOT / "BENCHMARKS.md", BENCH / "results.json", BENCH
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        markdown, results, chart = args.out / "BENCHMARKS.md", args.out / "results.json", args.out
    chart_path = chart / "latency-vs-load.png"

    started = time.monotonic()
    started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    machine_at_start = facts()
    peers_python = Path(os.environ.get("BENCH_PEERS_PYTHON", ROOT / ".venv-peers/bin/python"))
    machine_at_start["peers_environment"] = environment_versions(peers_python)
    chosen = [plan for plan in PLANS if plan.name in wanted or not wanted]
    runs = {plan.name: run_plan(plan, args.smoke) for plan in chosen}
    command = "python bench/run_all.py" + (" --smoke" if args.smoke else "")
    results_doc: dict[str, Any] = {
        "command": "make bench" if not args.smoke else command,
        "mode": "smoke" if args.smoke else "full",
        "started_at": started_at,
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": machine_at_start,
        "benchmarks": runs,
        "load_average_at_end": facts()["load_average"],
    }
    chart_written = write_chart(runs.get("latency"), chart_path)
    relative_chart = chart_path.relative_to(markdown.parent) if chart_written else None
    document, figures, targets = render_markdown(results_doc, relative_chart)
    results_doc["figures"] = figures
    results_doc["targets"] = targets
    markdown.write_text(document)
    results.write_text(json.dumps(results_doc, indent=2) + "\n")
    print(f"wrote {markdown}, {results}" + (f", {chart_path}" if chart_written else ""))
    failed = [name for name, run in runs.items() if run["status"] != "ok"]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
