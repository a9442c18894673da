"""The decision-quality report: one Markdown file plus small PNG charts in a directory."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from schemas.outputs import REASON_CODES
from workers.sim.evaluate import (
    COLUMNS,
    NONE,
    ROWS,
    Closure,
    Comparison,
    Scores,
    summary,
)
from workers.sim.generator import Label

EXAMPLES = 15


@dataclass(frozen=True)
class Run:
    """Facts about the evaluation run printed at the top of the report."""

    events_path: str
    labels_path: str
    events: int
    duplicates: int
    rejected: int
    until: datetime | None
    archetypes: Counter[str]
    from_dumps: bool = False
    """The decisions were read from dumps (``events_path`` names them, ``events`` counts
    their records and ``rejected`` the lines that were not a flag or decision)."""


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def duration(seconds: float) -> str:
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} d"


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return [*lines, ""]


def _evidence(closure: Closure) -> str:
    compact = {reason.code: reason.evidence for reason in closure.decision.reasons}
    return json.dumps(compact, separators=(",", ":"), default=str).replace("|", "\\|")


def _closure_rows(closures: Sequence[Closure]) -> list[list[object]]:
    return [
        [
            closure.label.user_id,
            closure.label.archetype,
            ", ".join(closure.label.traits) or "-",
            ", ".join(closure.reasons),
            closure.decision.decided_at.isoformat().replace("+00:00", "Z"),
            f"`{_evidence(closure)}`",
        ]
        for closure in closures[:EXAMPLES]
    ]


_CLOSURE_HEADER = ("user", "archetype", "traits", "reasons", "decided_at", "evidence")


def _per_reason(scores: Sequence[Scores]) -> list[str]:
    header = ["reason", "expected", "closed for it", "correct", "precision", "recall"]
    for other in scores[1:]:
        header += [f"precision ({other.outcome.version})", f"recall ({other.outcome.version})"]
    rows: list[list[object]] = []
    for code in REASON_CODES:
        first = scores[0].per_reason[code]
        row: list[object] = [code, first.expected, first.decided, first.true_positives]
        row += [percent(first.precision), percent(first.recall)]
        for other in scores[1:]:
            theirs = other.per_reason[code]
            row += [percent(theirs.precision), percent(theirs.recall)]
        rows.append(row)
    return _table(header, rows)


def _confusion(scores: Scores) -> list[str]:
    rows = [[row, *(scores.confusion[row, column] or "." for column in COLUMNS)] for row in ROWS]
    return _table(["label \\ first closure", *COLUMNS], rows)


def _false_closures(scores: Scores, examples: bool = True) -> list[str]:
    closures = scores.false_closures
    ordinary = sum(scores.confusion[NONE, column] for column in COLUMNS)
    lines = [
        f"{len(closures)} of {ordinary} users labelled with no reason were closed "
        f"({percent(len(closures) / ordinary if ordinary else None)}).",
        "",
    ]
    if not closures:
        return lines
    traits: Counter[str] = Counter(trait for c in closures for trait in c.label.traits or ("-",))
    lines += _table(["traits of the users closed", "users"], sorted(traits.items()))
    if not examples:
        return lines
    lines += [f"First {min(EXAMPLES, len(closures))}, with the evidence that closed them:", ""]
    return lines + _table(_CLOSURE_HEADER, _closure_rows(closures))


def _missed(scores: Scores) -> list[str]:
    by_reason: Counter[str] = Counter(label.expected_reason or NONE for label in scores.missed)
    lines = [f"{len(scores.missed)} risky users were not closed for their expected reason.", ""]
    if by_reason:
        lines += _table(["expected reason", "missed"], sorted(by_reason.items()))
        examples = [[m.user_id, m.archetype, ", ".join(m.traits) or "-"] for m in scores.missed]
        lines += _table(["user", "archetype", "traits"], examples[:EXAMPLES])
    return lines


def _latency(scores: Scores) -> list[str]:
    rows = []
    for code in REASON_CODES:
        stats = summary(scores.latency_seconds[code])
        if stats is not None:
            median, p90, longest = stats
            rows.append(
                [code, len(scores.latency_seconds[code]), *map(duration, (median, p90, longest))]
            )
    return _table(["reason", "users", "median", "p90", "max"], rows)


def _restore(scores: Scores) -> list[str]:
    restore = scores.restore
    lines = [
        f"- labelled to become restore-eligible: {restore.expected}",
        f"- made restore-eligible after their closure: {restore.restored_as_expected}",
    ]
    stats = summary(restore.days_to_eligibility)
    if stats is not None:
        lines.append(
            f"- closure to eligibility: median {stats[0]:.1f} d, p90 {stats[1]:.1f} d, "
            f"max {stats[2]:.1f} d"
        )
    unexpected = sum(restore.unexpected.values())
    lines.append(f"- made restore-eligible without being labelled so: {unexpected}")
    lines.append("")
    if unexpected:
        lines += _table(["archetype", "unexpected restores"], sorted(restore.unexpected.items()))
    return lines


def _comparison(before: Scores, after: Scores, comparison: Comparison) -> list[str]:
    lines = [
        f"Changing `{before.outcome.version}` to `{after.outcome.version}`: "
        f"{len(comparison.newly_closed)} users newly closed, "
        f"{len(comparison.no_longer_closed)} no longer closed.",
        "",
    ]

    def by_label(closures: list[Closure]) -> Counter[str]:
        return Counter(c.label.expected_reason or NONE for c in closures)

    newly, gone = by_label(comparison.newly_closed), by_label(comparison.no_longer_closed)
    rows = [[row, newly[row], gone[row]] for row in ROWS if newly[row] or gone[row]]
    lines += _table(["label", "newly closed", "no longer closed"], rows)
    for title, closures in (
        ("Newly closed", comparison.newly_closed),
        ("No longer closed", comparison.no_longer_closed),
    ):
        if closures:
            lines += [f"{title} (first {min(EXAMPLES, len(closures))}):", ""]
            lines += _table(_CLOSURE_HEADER, _closure_rows(closures))
    return lines


def _population(run: Run, scores: Scores) -> list[str]:
    until = "none" if run.until is None else run.until.isoformat().replace("+00:00", "Z")
    if run.from_dumps:
        upto = "the end of the dumps" if run.until is None else until
        lines = [
            f"- decisions: `{run.events_path}`, {run.events:,} records "
            f"({run.duplicates:,} duplicates ignored, {run.rejected:,} lines not a flag or "
            "decision)",
            f"- labels: `{run.labels_path}`, {scores.users:,} users; decisions up to {upto}",
            "",
        ]
    else:
        lines = [
            f"- events: `{run.events_path}`, {run.events:,} applied "
            f"({run.duplicates:,} duplicates ignored, {run.rejected:,} lines rejected)",
            f"- labels: `{run.labels_path}`, {scores.users:,} users; clock advanced to {until}",
            "",
        ]
    return lines + _table(["archetype", "users"], sorted(run.archetypes.items()))


def render(run: Run, scores: Sequence[Scores], comparison: Comparison | None) -> str:
    first = scores[0]
    title = " vs ".join(f"`{s.outcome.version}`" for s in scores)
    lines = [f"# Decision quality: {title}", "", *_population(run, first)]
    lines += ["## Precision and recall per reason", "", *_per_reason(scores)]
    lines += ["![precision and recall](precision_recall.png)", ""]
    for each in scores:
        lines += [f"## Labels vs first closure (`{each.outcome.version}`)", ""]
        lines += [*_confusion(each)]
    lines += ["## False closures of ordinary users", "", *_false_closures(first)]
    lines += ["## Risky users not closed for their reason", "", *_missed(first)]
    lines += ["## Time from risky behaviour to decision", "", *_latency(first)]
    lines += ["![time to decision](time_to_decision.png)", ""]
    lines += ["## Restore eligibility", "", *_restore(first)]
    if comparison is not None and len(scores) > 1:
        lines += ["## Comparison", "", *_comparison(first, scores[1], comparison)]
        lines += [
            "### False closures under the changed policy",
            "",
            *_false_closures(scores[1], examples=False),
        ]
    return "\n".join(lines).rstrip() + "\n"


def archetype_counts(labels: dict[str, Label]) -> Counter[str]:
    return Counter(label.archetype for label in labels.values())


def write_report(
    directory: Path, run: Run, scores: Sequence[Scores], comparison: Comparison | None
) -> Path:
    """Write ``report.md`` and its charts into ``directory``; returns the Markdown path."""
    from workers.sim.charts import draw_charts

    directory.mkdir(parents=True, exist_ok=True)
    draw_charts(directory, scores)
    path = directory / "report.md"
    path.write_text(render(run, scores, comparison), encoding="utf-8")
    return path
