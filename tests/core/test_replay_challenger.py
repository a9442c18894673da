"""``lineguard replay --challenger``: the challenger runs in lockstep with the live policy
over the same events, its outputs go to ``--shadow``, the live outputs are unchanged, and
the closures where the two disagree are counted on stderr."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from schemas.events import Event, event_to_json
from schemas.outputs import Decision, Flag
from tests.core import test_replay_overrides as with_overrides
from tests.core.scenario import POLICY, at, login, rfc3339
from tests.core.test_challenger import CHALLENGER, CHALLENGER_TEXT, POPULATION
from tests.core.test_policy_versions import variant
from tests.core.test_replay_cli import Replay, replay, write
from workers.core.engine import Engine

UNTIL = at(40)
DISAGREE = (
    "challenger disagreements: challenger_only CARD_BIND_UNBIND 8, live_only LOW_CREDIT_SCORE 8"
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("challenger")
    write(root / "events.jsonl", [event_to_json(e).decode() for e in POPULATION])
    (root / "challenger.toml").write_text(CHALLENGER_TEXT)
    return root


def run(workdir: Path, *args: str) -> Replay:
    done = replay(workdir, "--until", rfc3339(UNTIL), *args, files=[workdir / "events.jsonl"])
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture(scope="module")
def alone(workdir: Path) -> Replay:
    return run(workdir)


@pytest.fixture(scope="module")
def both(workdir: Path) -> Replay:
    return run(workdir, "--challenger", "challenger.toml", "--shadow", "shadow.jsonl")


def test_the_live_outputs_are_unchanged_byte_for_byte(alone: Replay, both: Replay) -> None:
    assert both.stdout == alone.stdout
    assert both.decisions  # live closes some users here
    assert both.flags == alone.flags
    assert {o.policy_role for o in [*both.decisions, *both.flags]} == {"live"}


def test_the_shadow_holds_the_challengers_outputs_in_the_order_made(
    workdir: Path, both: Replay
) -> None:
    """The challenger forked before the first event decides as an engine of its own that
    is fed the same events and advanced to --until."""
    challenger = Engine(POLICY).fork(CHALLENGER)
    expected = [o for event in POPULATION for o in challenger.apply(event).outputs]
    expected += challenger.advance(UNTIL, final=True)
    lines = (workdir / "shadow.jsonl").read_text().splitlines()
    assert lines == [o.model_dump_json() for o in expected]
    records = [json.loads(line) for line in lines]
    assert {r["policy_role"] for r in records} == {"challenger"}
    assert {r["policy_version"] for r in records} == {"challenger-1"}
    assert any("decision_id" in r for r in records) and any("flag_id" in r for r in records)


def test_the_disagreements_close_the_summary(alone: Replay, both: Replay) -> None:
    first, second = both.stderr.strip().split("\n")
    assert second == DISAGREE
    assert first.endswith("; challenger challenger-1")
    assert "disagreements" not in alone.stderr


def test_without_shadow_nothing_is_written_and_the_count_stays(workdir: Path) -> None:
    before = sorted(workdir.iterdir())
    done = run(workdir, "--challenger", "challenger.toml")
    assert done.stderr.strip().split("\n")[-1] == DISAGREE
    assert sorted(workdir.iterdir()) == before


def test_a_policy_switch_moves_only_the_live_engine(workdir: Path, both: Replay) -> None:
    """Live switches before the first event to the challenger's rules under another version:
    the two then agree everywhere, and the challenger's outputs (its version included) are
    what they were without the switch."""
    (workdir / "same-rules.toml").write_text(
        CHALLENGER_TEXT.replace('version = "challenger-1"', 'version = "challenger-2"')
    )
    switch = f"{rfc3339(at(-1))}=same-rules.toml"
    done = run(
        workdir, "--challenger", "challenger.toml", "--shadow", "s2.jsonl", "--policy-at", switch
    )
    assert done.stderr.strip().split("\n")[-1] == "challenger disagreements: none"
    assert {d.policy_version for d in done.decisions} == {"challenger-2"}
    assert (workdir / "s2.jsonl").read_text() == (workdir / "shadow.jsonl").read_text()


def _idle(workdir: Path, *events: Event) -> tuple[Replay, list[Decision]]:
    """Replay ``events`` to day 130 with a challenger whose inactivity deadline is 120 days
    (live: 90); the live run and the challenger's decisions."""
    write(workdir / "idle.jsonl", [event_to_json(e).decode() for e in events])
    (workdir / "slow.toml").write_text(variant("slow", **{"days = 90 ": "days = 120 "}))
    done = replay(
        workdir,
        *("--until", rfc3339(at(130)), "--challenger", "slow.toml"),
        *("--shadow", "idle-shadow.jsonl"),
        files=[workdir / "idle.jsonl"],
    )
    assert done.returncode == 0, done.stderr
    lines = (workdir / "idle-shadow.jsonl").read_text().splitlines()
    return done, [Decision.model_validate_json(line) for line in lines if "decision_id" in line]


def test_deadlines_fire_on_both_engines(workdir: Path) -> None:
    """u1 idles: live closes at day 90, when u2's event at day 100 moves both clocks; the
    challenger closes at day 120, at the advance to --until, the same closure (same id):
    the disagreement is counted once, when live closed alone."""
    done, shadow = _idle(workdir, login(at(0)), login(at(100), user="u2"))
    assert done.stderr.strip().split("\n")[-1] == (
        "challenger disagreements: live_only INACTIVITY 1"
    )
    [live] = done.decisions
    assert (live.user_id, live.decided_at, live.reasons[0].code) == ("u1", at(90), "INACTIVITY")
    [challenger] = shadow
    assert (challenger.decision_id, challenger.decided_at) == (live.decision_id, at(120))


def test_closures_made_in_the_same_step_agree(workdir: Path) -> None:
    """Without u2's event both deadlines fire in the one advance to --until: by the end of
    that step both policies have closed the line, so nothing is counted."""
    done, shadow = _idle(workdir, login(at(0)))
    assert done.stderr.strip().split("\n")[-1] == "challenger disagreements: none"
    assert [d.decided_at for d in done.decisions] == [at(90)]
    assert [d.decided_at for d in shadow] == [at(120)]


def test_shadow_without_a_challenger_is_a_usage_error(workdir: Path) -> None:
    done = replay(workdir, "--shadow", "x.jsonl", files=[workdir / "events.jsonl"])
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("lineguard: error: ")
    assert "--challenger" in done.stderr
    assert not (workdir / "x.jsonl").exists()


def test_shadow_flags_parse_as_flags(workdir: Path, both: Replay) -> None:
    lines = (workdir / "shadow.jsonl").read_text().splitlines()
    flags = [Flag.model_validate_json(line) for line in lines if "flag_id" in line]
    assert sum(f.signal == "CARD_BIND_UNBIND" for f in flags) == 8


def test_override_changes_reach_the_challenger(workdir: Path) -> None:
    """A challenger under the live policy's own rules, given the same override changes,
    decides exactly as live (a suppression held until day 10, a forced closure): the changes
    are applied to both."""
    write(workdir / "o-events.jsonl", [e.model_dump_json() for e in with_overrides.EVENTS])
    write(workdir / "overrides.jsonl", [c.model_dump_json() for c in with_overrides.CHANGES])
    (workdir / "twin.toml").write_text(variant("twin"))
    done = replay(
        workdir,
        *("--until", rfc3339(with_overrides.UNTIL), "--overrides", "overrides.jsonl"),
        *("--challenger", "twin.toml", "--shadow", "twin.jsonl"),
        files=[workdir / "o-events.jsonl"],
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().split("\n")[-1] == "challenger disagreements: none"
    codes = {d.user_id: [r.code for r in d.reasons] for d in done.decisions}
    assert codes == {"u1": ["LOW_CREDIT_SCORE"], "u2": ["MANUAL_REVIEW"]}
    shadow = [
        Decision.model_validate_json(line)
        for line in (workdir / "twin.jsonl").read_text().splitlines()
        if "decision_id" in line
    ]
    as_live = [d.model_copy(update={"policy_role": "live", "policy_version": "x"}) for d in shadow]
    assert as_live == [d.model_copy(update={"policy_version": "x"}) for d in done.decisions]
