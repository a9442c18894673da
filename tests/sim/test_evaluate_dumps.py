"""``lineguard evaluate --decisions``: scoring the decisions a live policy and a challenger
made, read from dumps of their outputs, gives what running both policies over the events
gives; bad lines and redelivered records in a dump are counted, not fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.events import event_to_json
from tests.core.test_replay_cli import replay
from workers.cli import main
from workers.core.policy import load_policy
from workers.inputs import source
from workers.replay import parse_moment
from workers.sim.evaluate import (
    DumpCounts,
    dump_outcome,
    read_labels,
    read_outputs,
    score,
)
from workers.sim.generator import SimulationConfig, generate, labels

CONFIG = SimulationConfig(
    users=120,
    days=40,
    seed=5,
    mix={"ordinary": 0.6, "low_score": 0.15, "churner": 0.15, "device_switcher": 0.1},
)
UNTIL = CONFIG.ends_at.isoformat().replace("+00:00", "Z")
STRICT = 'version = "strict"\n[low_credit_score]\nmin_score = 700\n'


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The population's events and labels, and replay's dumps of the live policy's outputs
    (live.jsonl, flags.jsonl) and of the strict challenger's (shadow.jsonl)."""
    root = tmp_path_factory.mktemp("dumps")
    with (root / "events.jsonl").open("wb") as out:
        out.writelines(event_to_json(event) + b"\n" for event in generate(CONFIG))
    (root / "labels.jsonl").write_text(
        "".join(label.model_dump_json() + "\n" for label in labels(CONFIG))
    )
    (root / "strict.toml").write_text(STRICT)
    done = replay(
        root,
        *("--until", UNTIL, "--challenger", "strict.toml", "--shadow", "shadow.jsonl"),
        files=[root / "events.jsonl"],
    )
    assert done.returncode == 0, done.stderr
    (root / "live.jsonl").write_text(done.stdout)
    return root


def evaluate(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int | str | None, str]:
    """Exit code and stderr (the option parser exits by itself on a mistake)."""
    try:
        code: int | str | None = main(["evaluate", "--no-progress", *map(str, argv)])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def report_body(directory: Path) -> list[str]:
    """The report without its first lines (which name the inputs)."""
    lines = (directory / "report.md").read_text().splitlines()
    assert lines[2].startswith(("- events: ", "- decisions: "))
    return [lines[0], *lines[4:]]


def test_dumps_score_as_running_the_policies_over_the_events(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from_events = work / "from-events"
    code, events_err = evaluate(
        capsys,
        *("--events", work / "events.jsonl", "--labels", work / "labels.jsonl"),
        *("--until", UNTIL, "--compare-policy", work / "strict.toml", "--report", from_events),
    )
    assert code == 0, events_err
    from_dumps = work / "from-dumps"
    code, dumps_err = evaluate(
        capsys,
        *("--decisions", work / "live.jsonl", "--decisions", work / "flags.jsonl"),
        *("--shadow-decisions", work / "shadow.jsonl", "--labels", work / "labels.jsonl"),
        *("--report", from_dumps),
    )
    assert code == 0, dumps_err
    assert report_body(from_dumps) == report_body(from_events)
    # the per-policy lines of the summary too (the last line names the report and the time)
    assert dumps_err.splitlines()[:-1] == events_err.splitlines()[:-1]
    assert "warning" not in dumps_err

    population = read_labels(work / "labels.jsonl")
    outcomes = [
        dump_outcome(read_outputs([source(work / name) for name in names], DumpCounts()))
        for names in (["live.jsonl", "flags.jsonl"], ["shadow.jsonl"])
    ]
    assert [o.version for o in outcomes] == [load_policy().version, "strict"]
    scores = [score(population, outcome).per_reason for outcome in outcomes]
    low = [each["LOW_CREDIT_SCORE"] for each in scores]
    # the population gives the comparison something to show: the strict challenger closes
    # ordinary users with scores from 600 to 699, live closes none of them
    assert low[0].precision == 1.0 and low[0].recall == 1.0
    assert low[1].decided > low[0].decided and low[1].precision < 1.0  # type: ignore[operator]
    assert f"| LOW_CREDIT_SCORE | {low[0].expected} | {low[0].decided} |" in "\n".join(
        report_body(from_dumps)
    )


def test_bad_lines_and_redelivered_records_are_counted_once(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = (work / "live.jsonl").read_text().splitlines()
    flags = (work / "flags.jsonl").read_text().splitlines()
    event = event_to_json(next(iter(generate(CONFIG)))).decode()
    dirty = [live[0], "{not json", *live, flags[0], event, "", *flags, live[-1]]
    (work / "dirty.jsonl").write_text("\n".join(dirty) + "\n")

    counts = DumpCounts()
    outcome = dump_outcome(read_outputs([source(work / "dirty.jsonl")], counts))
    clean = dump_outcome(
        read_outputs([source(work / "live.jsonl"), source(work / "flags.jsonl")], DumpCounts())
    )
    assert (counts.records, counts.duplicates, counts.invalid) == (len(live) + len(flags), 3, 2)
    assert "dirty.jsonl:2: Invalid JSON" in str(counts.first_invalid)
    assert outcome == clean

    code, err = evaluate(
        capsys,
        *("--decisions", work / "dirty.jsonl", "--labels", work / "labels.jsonl"),
        *("--report", work / "dirty-report"),
    )
    assert code == 0, err
    assert "warning: 2 lines are not a flag or decision, left out (the first: " in err
    assert "dirty.jsonl:2: Invalid JSON" in err
    report = (work / "dirty-report" / "report.md").read_text()
    assert "(3 duplicates ignored, 2 lines not a flag or decision)" in report


def test_a_dump_across_a_policy_switch_names_both_versions(work: Path) -> None:
    both = [source(work / "live.jsonl"), source(work / "shadow.jsonl")]
    outcome = dump_outcome(read_outputs(both, DumpCounts()))
    assert outcome.version == "default-2026.12+strict"
    assert dump_outcome(read_outputs([], DumpCounts())).version == "none"


def test_until_leaves_out_later_records(work: Path) -> None:
    records = [json.loads(line) for line in (work / "shadow.jsonl").read_text().splitlines()]
    cut = sorted(r.get("decided_at") or r["raised_at"] for r in records)[len(records) // 2]
    counts = DumpCounts()
    kept = list(read_outputs([source(work / "shadow.jsonl")], counts, parse_moment(cut)))
    assert 0 < len(kept) < len(records)
    assert counts.after_until == len(records) - len(kept)


MISTAKES = {
    "events-and-decisions": (["--events", "e", "--decisions", "d", "--until", UNTIL],
                             "not allowed"),
    "neither": (["--until", UNTIL], "--events"),
    "shadow-with-events": (["--events", "e", "--until", UNTIL, "--shadow-decisions", "s"],
                           "--shadow-decisions goes with --decisions"),
    "policy-with-decisions": (["--decisions", "d", "--policy", "p.toml"], "--policy"),
    "compare-with-decisions": (["--decisions", "d", "--compare-policy", "p.toml"], "--policy"),
    "events-without-until": (["--events", "e"], "--until is required with --events"),
}  # fmt: skip


@pytest.mark.parametrize(("argv", "mention"), MISTAKES.values(), ids=MISTAKES.keys())
def test_mistakes_are_refused_with_a_clear_message(
    work: Path, argv: list[str], mention: str, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = {"e": work / "events.jsonl", "d": work / "live.jsonl", "s": work / "shadow.jsonl"}
    argv = [str(paths.get(a, a)) for a in argv]
    code, err = evaluate(capsys, *argv, "--labels", work / "labels.jsonl", "--report", work / "x")
    assert code == 2
    assert err.startswith("lineguard: error: ")
    assert mention in err
    assert not (work / "x").exists()


def test_dumps_of_one_version_are_told_apart(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = evaluate(
        capsys,
        *("--decisions", work / "live.jsonl", "--shadow-decisions", work / "live.jsonl"),
        *("--labels", work / "labels.jsonl", "--report", work / "twins"),
    )
    assert code == 0, err
    title = (work / "twins" / "report.md").read_text().splitlines()[0]
    assert title == "# Decision quality: `default-2026.12` vs `default-2026.12 (challenger)`"
    assert "0 users newly closed, 0 no longer closed." in (work / "twins" / "report.md").read_text()


def test_labels_of_another_population_are_warned_about(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    others = SimulationConfig(users=5, days=40, seed=5, user_prefix="other-")
    (work / "other-labels.jsonl").write_text(
        "".join(label.model_dump_json() + "\n" for label in labels(others))
    )
    code, err = evaluate(
        capsys,
        *("--decisions", work / "live.jsonl", "--labels", work / "other-labels.jsonl"),
        *("--report", work / "others"),
    )
    assert code == 0, err
    users = len({json.loads(line)["user_id"] for line in (work / "live.jsonl").open()})
    assert f"warning: {users} of the {users} users in the decisions have no label" in err
    code, err = evaluate(
        capsys,
        *("--decisions", work / "live.jsonl", "--labels", work / "labels.jsonl"),
        *("--report", work / "same"),
    )
    assert code == 0 and "warning" not in err
