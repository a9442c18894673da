"""Throughput of the decision core on one core, on three streams, and the cost of one output.

For each stream (``streams.py``: the simulated population, a decision-heavy adversarial
stream, the stress mix), CPU time of this process for:

  decode    JSON bytes -> validated events (``workers.decoding.decode_event``)
  core      ``Engine.apply`` over the decoded events, then the clock to the last event
  replay    decode + apply + encode every output to its wire JSON: what ``lineguard replay``
            does per line (without its file handling)

and, apart, the microseconds to build and encode one output: a flag raised and a line
closed through the core's own builder (``lifecycle.Step``), encoded with
``workers.codec.encode_output``.

    python bench/core_bench.py [--json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from streams import adversarial, last_moment, simulated, stress

from schemas.outputs import Decision, Flag
from workers.codec import encode_output
from workers.core.compiled import compile_policy
from workers.core.engine import Engine
from workers.core.lifecycle import Step
from workers.core.policy import load_policy
from workers.core.state import UserState
from workers.decoding import Rejected, decode_event
from workers.replay import OFFLINE_LIVE_USERS


def measure_stream(name: str, lines: list[bytes]) -> dict[str, Any]:
    policy = load_policy()
    until = last_moment(lines)

    started = time.process_time()
    decoded = [decode_event(line) for line in lines]
    decode_s = time.process_time() - started
    events = [event for event in decoded if not isinstance(event, Rejected)]
    if len(events) != len(lines):
        raise SystemExit(f"{name}: {len(lines) - len(events)} lines did not decode")

    engine = Engine(policy, live_users=OFFLINE_LIVE_USERS)
    decisions = flags = 0
    started = time.process_time()
    for event in events:
        for output in engine.apply(event).outputs:
            decisions += isinstance(output, Decision)
            flags += isinstance(output, Flag)
    for output in engine.advance(until, final=True):
        decisions += isinstance(output, Decision)
        flags += isinstance(output, Flag)
    core_s = time.process_time() - started
    del decoded, events

    engine = Engine(policy, live_users=OFFLINE_LIVE_USERS)
    written = 0
    started = time.process_time()
    for line in lines:
        event = decode_event(line)
        if isinstance(event, Rejected):
            continue
        for output in engine.apply(event).outputs:
            written += len(encode_output(output))
    for output in engine.advance(until, final=True):
        written += len(encode_output(output))
    replay_s = time.process_time() - started

    n = len(lines)
    return {
        "events": n,
        "users": engine.user_count,
        "decisions": decisions,
        "flags": flags,
        "decisions_per_event": round(decisions / n, 4),
        "flags_per_event": round(flags / n, 4),
        "decode_events_per_s": round(n / decode_s),
        "core_events_per_s": round(n / core_s),
        "replay_events_per_s": round(n / replay_s),
        "decode_seconds": round(decode_s, 3),
        "core_seconds": round(core_s, 3),
        "replay_seconds": round(replay_s, 3),
        "output_bytes": written,
    }


def output_cost(repeats: int) -> dict[str, float]:
    """Microseconds to build and encode a flag, and a close_line decision, through the core's
    own builder: a fresh user, one step, a low credit score raised (a flag), then the step
    finished (the line closes: a decision with its reasons and message)."""
    rules = compile_policy(load_policy())
    evidence = {"credit_score": 540, "min_score": 600}
    at = 1_780_000_000_000_000

    def flag_only() -> None:
        step = Step(UserState(), rules, "u00000001", at, "ev-1")
        step.raise_flag("LOW_CREDIT_SCORE", evidence)
        for output in step.outputs:
            encode_output(output)

    def flag_and_close() -> None:
        state = UserState(score=540, score_at=at)
        step = Step(state, rules, "u00000001", at, "ev-1")
        step.raise_flag("LOW_CREDIT_SCORE", evidence)
        step.finish()
        assert len(step.outputs) == 2, "expected a flag and a closure"
        for output in step.outputs:
            encode_output(output)

    def baseline() -> None:
        Step(UserState(), rules, "u00000001", at, "ev-1")

    def per_call(function: Callable[[], None]) -> float:
        function()
        started = time.process_time()
        for _ in range(repeats):
            function()
        return (time.process_time() - started) / repeats * 1e6

    empty = per_call(baseline)
    flag = per_call(flag_only) - empty
    both = per_call(flag_and_close) - empty
    return {
        "flag_build_encode_us": round(flag, 2),
        "decision_build_encode_us": round(both - flag, 2),
        "output_build_encode_us": round(both / 2, 2),
        "repeats": repeats,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    plans: dict[str, Callable[[], list[bytes]]] = {
        "simulated": lambda: simulated(args.sim_users, args.sim_days, args.seed),
        "adversarial": lambda: adversarial(args.adversarial_users, args.seed),
        "stress": lambda: stress(args.stress_events, args.stress_users, args.seed),
    }
    report: dict[str, Any] = {"streams": {}}
    for name, build in plans.items():
        lines = build()
        report["streams"][name] = measure_stream(name, lines)
    report["outputs"] = output_cost(args.output_repeats)
    report["sizes"] = {key: value for key, value in vars(args).items() if key != "json"}
    return report


def render(report: dict[str, Any]) -> str:
    rows = [
        "| stream | events | decisions/event | flags/event | decode ev/s | core ev/s "
        "| replay ev/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in report["streams"].items():
        rows.append(
            f"| {name} | {row['events']:,} | {row['decisions_per_event']:.3f} "
            f"| {row['flags_per_event']:.3f} | {row['decode_events_per_s']:,} "
            f"| {row['core_events_per_s']:,} | {row['replay_events_per_s']:,} |"
        )
    outputs = report["outputs"]
    rows.append("")
    rows.append(
        f"build + encode: flag {outputs['flag_build_encode_us']} µs, close_line decision "
        f"{outputs['decision_build_encode_us']} µs"
    )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-users", type=int, default=20_000)
    parser.add_argument("--sim-days", type=int, default=180)
    parser.add_argument("--adversarial-users", type=int, default=100_000)
    parser.add_argument("--stress-events", type=int, default=1_000_000)
    parser.add_argument("--stress-users", type=int, default=50_000)
    parser.add_argument("--output-repeats", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()
    report = run(args)
    print(json.dumps(report, indent=2) if args.json else render(report))


if __name__ == "__main__":
    main()
