"""``lineguard replay --overrides``: override changes from a file, each at its time, give
what the engine gives when it is fed the same changes in time order with the events."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from schemas.outputs import Decision, Rejection
from tests.core.scenario import at, login, rfc3339, score
from tests.core.test_overrides import change, override, suppress_score
from workers.core.engine import Engine
from workers.core.policy import load_policy
from workers.replay import replay_events

EVENTS = [
    login(at(0), eid="e1"),
    score(at(1), 550, eid="e2"),  # held back by the suppression until day 10
    login(at(0), user="u2", eid="e3"),
    score(at(2), 560, user="u2", eid="e4"),  # u2: forced closure at day 3 came first
    login(at(20), eid="e5"),
]
CHANGES = [
    change(at(0, hours=1), suppress_score(created=at(0, hours=1), until=at(10))),
    change(
        at(1, hours=12),
        override("force_close", None, created=at(1, hours=12), oid="fc-1", note="case 77"),
        user="u2",
    ),
]
UNTIL = at(30)


def engine_outputs() -> list[str]:
    """The engine fed events and changes in time order, changes after same-instant events."""
    engine = Engine(load_policy())
    items = sorted(
        [(e.occurred_at, 0, e) for e in EVENTS] + [(c.changed_at, 1, c) for c in CHANGES],
        key=lambda item: (item[0], item[1]),
    )
    outputs = []
    for _, kind, item in items:
        step = engine.apply(item) if kind == 0 else engine.apply_overrides(item)  # type: ignore[arg-type]
        outputs += step.outputs
    outputs += engine.advance(UNTIL, final=True)
    return [o.model_dump_json() for o in outputs if isinstance(o, Decision)]


def test_replay_events_with_overrides_equals_the_engine() -> None:
    result = replay_events(EVENTS, load_policy(), UNTIL, overrides=CHANGES)
    replayed = [d.model_dump_json() for d in result.decisions]
    assert replayed == engine_outputs()
    by_user = {d.user_id: d for d in result.decisions}
    assert by_user["u1"].decided_at == at(10)
    assert [r.code for r in by_user["u2"].reasons] == ["MANUAL_REVIEW"]
    assert by_user["u2"].decided_at == at(1, hours=12)


def test_the_command_reads_overrides_from_a_file(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("".join(e.model_dump_json() + "\n" for e in EVENTS))
    changes = tmp_path / "overrides.jsonl"
    late = change(at(40))
    changes.write_text(
        "".join(c.model_dump_json() + "\n" for c in CHANGES)
        + "{not json\n"
        + json.dumps({"user_id": "u1", "overrides": []})
        + "\n"
        + late.model_dump_json()
        + "\n"
    )
    rejects = tmp_path / "rejects.jsonl"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "workers.cli",
            "replay",
            str(events),
            "--overrides",
            str(changes),
            "--until",
            rfc3339(UNTIL),
            "--rejects",
            str(rejects),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.splitlines() == engine_outputs()
    assert "2 override changes" in done.stderr
    refused = [Rejection.model_validate_json(x) for x in rejects.read_text().splitlines()]
    assert [(r.line, r.error_kind) for r in refused] == [
        (3, "not_json"),
        (4, "invalid_contract"),
        (5, "after_until"),
    ]


def test_without_overrides_nothing_is_held_back() -> None:
    result = replay_events(EVENTS, load_policy(), UNTIL)
    assert {d.user_id: d.decided_at for d in result.decisions} == {"u1": at(1), "u2": at(2)}
