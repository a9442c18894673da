"""Policy versions without a broker: what ``diff`` reports, how the policies topic is folded
(what is adopted, what is refused and why), and a replay that switches policy at a time."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from schemas.control import PolicyRecord
from tests.core.scenario import POLICY, at, closes, login, score
from workers.core.policy import parse_policy
from workers.errors import PolicyError
from workers.policies import Adopted, History, Withdrawn, diff, make_record, sha256_of
from workers.replay import replay_events

DEFAULT_TEXT = (Path(__file__).parents[2] / "workers/policy/default.toml").read_text()
PUBLISHED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def variant(version: str, **replace: str) -> str:
    """The default policy's text with another version and some lines replaced."""
    text = DEFAULT_TEXT.replace('version = "default-2026.12"', f'version = "{version}"')
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


STRICT_SCORE = variant("strict-score", **{"min_score = 600": "min_score = 650"})


def record_bytes(text: str, role: str = "live", **overrides: object) -> bytes:
    record, _ = make_record(text, role, "analyst@example", PUBLISHED)  # type: ignore[arg-type]
    body = {**json.loads(record.model_dump_json()), **overrides}
    return json.dumps(body).encode()


def test_diff_names_each_changed_setting_under_its_rule() -> None:
    old, new = POLICY, parse_policy(STRICT_SCORE)
    assert diff(old, new) == [
        "version: 'default-2026.12' -> 'strict-score'",
        "low_credit_score.min_score: 600 -> 650",
    ]
    assert diff(old, old) == []


def test_diff_shows_a_changed_action_and_a_list_setting() -> None:
    text = variant(
        "flag-devices",
        **{"flag_milestones = [1, 7, 15, 30]": "flag_milestones = [1, 30]"},
    )
    lines = diff(POLICY, parse_policy(text))
    assert "serious_overdue.flag_milestones: [1, 7, 15, 30] -> [1, 30]" in lines


def test_a_record_is_the_validated_text_with_its_hash() -> None:
    record, policy = make_record(STRICT_SCORE, "live", "analyst@example", PUBLISHED, "appeal")
    assert record.version == policy.version == "strict-score"
    assert record.sha256 == sha256_of(STRICT_SCORE)
    assert PolicyRecord.model_validate_json(record.model_dump_json()) == record
    with pytest.raises(PolicyError, match="min_score"):
        make_record(
            variant("bad", **{"min_score = 600": "min_score = 6000"}), "live", "a", PUBLISHED
        )


REFUSALS = [
    ("tombstone", None, "tombstone"),
    ("not json", b"{", "not a policy record"),
    ("bad hash", record_bytes(STRICT_SCORE, sha256="0" * 64), "sha256 does not match"),
    (
        "invalid policy",
        record_bytes(STRICT_SCORE, policy_toml="x = ", sha256=sha256_of("x = ")),
        "not valid TOML",
    ),
    ("version mismatch", record_bytes(STRICT_SCORE, version="other"), "its text 'strict-score'"),
]


@pytest.mark.parametrize(("value", "why"), [r[1:] for r in REFUSALS], ids=[r[0] for r in REFUSALS])
def test_a_bad_record_is_refused_and_the_live_policy_stays(value: bytes | None, why: str) -> None:
    history = History()
    good = history.add(0, b"live", record_bytes(DEFAULT_TEXT))
    assert isinstance(good, Adopted)
    outcome = history.add(1, b"live", value)
    assert isinstance(outcome, str) and why in outcome
    assert history.current["live"] is good
    assert history.refused == [(1, outcome)]


def test_a_version_names_one_content_only() -> None:
    history = History()
    assert isinstance(history.add(0, b"live", record_bytes(STRICT_SCORE)), Adopted)
    reused = variant("strict-score", **{"min_score = 600": "min_score = 700"})
    outcome = history.add(1, b"challenger", record_bytes(reused, role="challenger"))
    assert outcome == "version 'strict-score' was already published with other content"
    # The same content under the same version is fine (a republish, or the other role).
    same = history.add(2, b"challenger", record_bytes(STRICT_SCORE, role="challenger"))
    assert isinstance(same, Adopted) and history.current["challenger"].offset == 2


def test_a_record_under_another_key_is_refused() -> None:
    outcome = History().add(0, b"challenger", record_bytes(STRICT_SCORE))
    assert outcome == "key b'challenger' is not the record's role 'live'"


def test_replay_switches_policy_once_the_clock_reaches_the_time() -> None:
    """A score falling from 700 to 620 passes the default policy (600) and fails the strict
    one (650): the same events close the line only when the fall comes after the switch."""
    strict = parse_policy(STRICT_SCORE)
    events = [login(at(0)), score(at(1), 700), login(at(5)), score(at(12), 620)]
    assert closes(replay_events(events, POLICY).decisions) == []
    switched = replay_events(events, POLICY, switches=[(at(10), strict)])
    (closure,) = closes(switched.decisions)
    assert closure.policy_version == "strict-score"
    assert closure.decided_at == at(12)
    too_late = replay_events(events, POLICY, switches=[(at(20), strict)])
    assert closes(too_late.decisions) == []


def test_replay_fires_deadlines_due_before_the_switch_under_the_old_policy() -> None:
    """Inactivity after 90 days (default) versus 30 days: switching at day 100 leaves the
    closure made at day 90 to the default policy, decided under its version."""
    short = parse_policy(variant("short-inactivity", **{"days = 90 ": "days = 30 "}))
    events = [login(at(0)), login(at(130))]
    result = replay_events(events, POLICY, switches=[(at(100), short)])
    versions = [d.policy_version for d in closes(result.decisions)]
    assert versions and versions[0] == POLICY.version


def test_policy_at_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from schemas.events import event_to_json
    from workers.cli import main

    strict = tmp_path / "strict.toml"
    strict.write_text(STRICT_SCORE)
    events = tmp_path / "events.jsonl"
    stream = [login(at(0)), score(at(1), 700), score(at(12), 620)]
    events.write_bytes(b"".join(event_to_json(e) + b"\n" for e in stream))
    assert main(["replay", str(events), "--policy-at", f"{at(10).isoformat()}={strict}"]) == 0
    out, err = capsys.readouterr()
    (line,) = out.splitlines()
    assert json.loads(line)["policy_version"] == "strict-score"
    assert "then strict-score at 2026-03-12T09:00:00Z" in err


def test_policy_at_refuses_a_bad_argument(capsys: pytest.CaptureFixture[str]) -> None:
    from workers.cli import main

    with pytest.raises(SystemExit) as exited:
        main(["replay", "-", "--policy-at", "2026-01-01T00:00:00Z"])
    assert exited.value.code == 2
    assert "TIME=FILE" in capsys.readouterr().err


def test_a_closure_keeps_its_id_whatever_the_policy_version() -> None:
    """Ids name the closure (user, kind, cycle), not the policy: a batch redelivered after a
    switch cannot publish the same closure twice under two ids."""
    renamed = parse_policy(variant("renamed"))
    events = [login(at(0)), score(at(1), 700), score(at(2), 550)]
    (old,) = closes(replay_events(events, POLICY).decisions)
    (new,) = closes(replay_events(events, renamed).decisions)
    assert (old.policy_version, new.policy_version) == (POLICY.version, "renamed")
    assert old.decision_id == new.decision_id


def test_a_tombstone_withdraws_the_challenger_and_leaves_live() -> None:
    history = History()
    live = history.add(0, b"live", record_bytes(DEFAULT_TEXT))
    challenger = history.add(1, b"challenger", record_bytes(STRICT_SCORE, role="challenger"))
    assert isinstance(live, Adopted) and isinstance(challenger, Adopted)
    assert history.add(2, b"challenger", None) == Withdrawn("challenger", 2)
    assert history.current == {"live": live}
    again = history.add(3, b"challenger", record_bytes(STRICT_SCORE, role="challenger"))
    assert isinstance(again, Adopted) and history.current["challenger"] is again
    assert history.refused == []
