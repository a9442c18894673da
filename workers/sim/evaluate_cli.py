"""``lineguard evaluate``: score a policy (or two, side by side) against a labelled population.

    lineguard evaluate --events events.jsonl --labels labels.jsonl \\
        --until 2026-06-30T00:00:00Z --report reports/default \\
        [--policy P.toml] [--compare-policy P2.toml]

or, from what the policies decided (dumps of the decisions and flags topics, or of
``lineguard replay``'s outputs), without running them again:

    lineguard evaluate --decisions live.jsonl [--shadow-decisions shadow.jsonl] \\
        --labels labels.jsonl --report reports/challenger
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from workers.core.policy import load_policy
from workers.errors import InputError
from workers.inputs import sources, total_size
from workers.problems import Problem
from workers.progress import add_option as add_progress_option
from workers.progress import meter, wanted
from workers.replay import Counts, parse_moment
from workers.sim.evaluate import (
    DumpCounts,
    PolicyOutcome,
    compare,
    dump_outcome,
    file_events,
    overlap_warning,
    read_labels,
    read_outputs,
    run_policies,
    score,
    unlabelled_warning,
    users_seen,
)
from workers.sim.generator import Label
from workers.sim.report import Run, archetype_counts, percent, write_report


def configure(parser: argparse.ArgumentParser) -> None:
    inputs = parser.add_mutually_exclusive_group(required=True)
    inputs.add_argument(
        "--events",
        type=Path,
        help="JSON-lines events ('-': standard input; gzip is read transparently)",
    )
    inputs.add_argument(
        "--decisions",
        type=Path,
        action="append",
        metavar="DUMP",
        help="instead of events: JSON lines of the decisions and flags a policy made (records "
        "of lineguard.decisions and lineguard.flags, or replay's outputs; gzip too); "
        "repeatable",
    )
    parser.add_argument(
        "--shadow-decisions",
        type=Path,
        action="append",
        metavar="DUMP",
        help="with --decisions: the challenger's decisions and flags (lineguard.shadow-decisions "
        "or replay --shadow), compared with them side by side; repeatable",
    )
    parser.add_argument(
        "--labels", type=Path, required=True, help="labels from `simulate` (gzip too)"
    )
    parser.add_argument("--policy", type=Path, help="policy TOML (default: the packaged policy)")
    parser.add_argument(
        "--compare-policy", type=Path, help="a second policy TOML to compare side by side"
    )
    parser.add_argument(
        "--until",
        type=parse_moment,
        help="advance the clock to this time at the end (the end of the simulated span); "
        "required with --events; with --decisions, records dated after it are left out",
    )
    parser.add_argument("--report", type=Path, required=True, help="directory for the report")

    add_progress_option(parser)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    if args.decisions is None:
        if args.shadow_decisions is not None:
            raise Problem("--shadow-decisions goes with --decisions, not --events")
        if args.until is None:
            raise Problem("--until is required with --events (the end of the simulated span)")
    elif args.policy is not None or args.compare_policy is not None:
        raise Problem(
            "--policy and --compare-policy run policies over --events; with --decisions the "
            "dumps already say what was decided (the challenger's: --shadow-decisions)"
        )
    if args.report.exists() and not args.report.is_dir():
        raise Problem(f"--report {args.report}: is a file; give a directory for the report")
    if args.decisions is None:
        labels, outcomes, facts, warning = _from_events(args)
    else:
        labels, outcomes, facts, warning = _from_dumps(args)
    scores = [score(labels, outcome) for outcome in outcomes]
    comparison = compare(labels, *outcomes) if len(outcomes) == 2 else None
    try:
        path = write_report(args.report, facts, scores, comparison)
    except OSError as exc:
        raise InputError(
            f"cannot write the report to {args.report}: {exc.strerror or exc}"
        ) from exc
    for text in warning:
        print(f"lineguard evaluate: warning: {text}", file=sys.stderr)
    for each in scores:
        closed = len(each.outcome.first_close)
        print(
            f"{each.outcome.version}: {closed:,} users closed, "
            f"{len(each.false_closures):,} of them labelled ordinary; recall "
            + ", ".join(f"{code} {percent(s.recall)}" for code, s in each.per_reason.items()),
            file=sys.stderr,
        )
    print(f"report: {path} ({time.monotonic() - started:,.1f}s)", file=sys.stderr)
    return 0


Inputs = tuple[dict[str, Label], list[PolicyOutcome], Run, list[str]]
"""Labels, the outcome of each policy, the facts of the run and warnings."""


def _from_events(args: argparse.Namespace) -> Inputs:
    policies = [load_policy(args.policy)]
    if args.compare_policy is not None:
        policies.append(load_policy(args.compare_policy))
        if policies[1].version == policies[0].version:
            raise Problem("the two policies share a version; give the changed one its own")
    events_source, labels_source = sources([args.events, args.labels])
    labels = read_labels(labels_source)
    counts = Counts()
    seen: set[str] = set()
    with meter("evaluate", events_source.size, wanted(args.progress)) as bar:
        events = users_seen(file_events(events_source, counts, bar), seen)
        outcomes = run_policies(events, policies, args.until, counts)
    facts = Run(
        events_path=str(args.events),
        labels_path=str(args.labels),
        events=counts.events,
        duplicates=counts.duplicates,
        rejected=counts.rejected,
        until=args.until,
        archetypes=archetype_counts(labels),
    )
    warning = overlap_warning(labels, seen)
    return labels, outcomes, facts, [] if warning is None else [warning]


def _from_dumps(args: argparse.Namespace) -> Inputs:
    """The outcomes of the policies whose decisions and flags were dumped: the live one
    (--decisions) and the challenger (--shadow-decisions), if given."""
    dumps = [args.decisions, *([args.shadow_decisions] if args.shadow_decisions else [])]
    checked = iter(sources([args.labels, *(path for paths in dumps for path in paths)]))
    labels_source = next(checked)
    groups = [[next(checked) for _ in paths] for paths in dumps]
    labels = read_labels(labels_source)
    counts = DumpCounts()
    size = total_size(each for group in groups for each in group)
    with meter("evaluate", size, wanted(args.progress)) as bar:
        outcomes = [dump_outcome(read_outputs(g, counts, args.until, bar)) for g in groups]
    if len(outcomes) == 2 and outcomes[1].version == outcomes[0].version:
        outcomes[1].version += " (challenger)"
    facts = Run(
        events_path="; shadow: ".join(", ".join(map(str, paths)) for paths in dumps),
        labels_path=str(args.labels),
        events=counts.records,
        duplicates=counts.duplicates,
        rejected=counts.invalid,
        until=args.until,
        archetypes=archetype_counts(labels),
        from_dumps=True,
    )
    warnings = []
    if counts.invalid:
        warnings.append(
            f"{counts.invalid:,} lines are not a flag or decision, left out "
            f"(the first: {counts.first_invalid})"
        )
    if counts.after_until:
        warnings.append(f"{counts.after_until:,} records dated after --until left out")
    unlabelled = unlabelled_warning(labels, counts.users)
    return labels, outcomes, facts, warnings + ([] if unlabelled is None else [unlabelled])
