"""Per-user overrides in the core: suppress, force_close and watch, applied as facts of the
user's history at their time, with expiry as a deadline like any other."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from schemas.control import OverrideRecord
from schemas.outputs import Output
from tests.core.scenario import (
    DAY,
    HOUR,
    Timeline,
    at,
    closes,
    codes,
    flags,
    login,
    restores,
    rfc3339,
    score,
)
from workers.core.engine import Engine

REF = {"id": "ov-1", "kind": "suppress", "actor": "alice"}


def override(
    kind: str = "suppress",
    rule: str | None = "LOW_CREDIT_SCORE",
    created: datetime | None = None,
    until: datetime | None = None,
    oid: str = "ov-1",
    note: str = "",
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": oid,
        "kind": kind,
        "actor": "alice",
        "reason": "appeal 4411",
        "created_at": rfc3339(created or at(0)),
        "note": note,
    }
    if rule is not None:
        body["rule"] = rule
    if until is not None:
        body["expires_at"] = rfc3339(until)
    return body


def change(when: datetime, *overrides: dict[str, Any], user: str = "u1") -> OverrideRecord:
    return OverrideRecord.model_validate_json(
        json.dumps(
            {
                "user_id": user,
                "overrides": list(overrides),
                "changed_at": rfc3339(when),
                "changed_by": "alice",
            }
        )
    )


def suppress_score(
    until: datetime | None = None, created: datetime | None = None
) -> dict[str, Any]:
    """Suppress LOW_CREDIT_SCORE from ``created`` (day 0) until ``until`` (day 10)."""
    return override(created=created or at(0), until=until or at(10))


class Story(Timeline):
    def change(self, record: OverrideRecord) -> list[Output]:
        step = self.engine.apply_overrides(record)
        self.outputs.extend(step.outputs)
        return step.outputs


def test_a_suppression_holds_a_closure_back_and_its_flag_names_it() -> None:
    story = Story()
    story.change(change(at(0), suppress_score()))
    story.apply(login(at(0, 1)), score(at(1), 550))
    (flag,) = flags(story.outputs, "LOW_CREDIT_SCORE")
    assert flag.evidence["overrides"] == [REF]
    assert closes(story.outputs) == []
    assert story.line_state() == "open"


def test_when_it_expires_a_condition_that_still_holds_closes_the_line_then() -> None:
    story = Story()
    story.change(change(at(0), suppress_score(until=at(10))))
    story.apply(login(at(0, 1)), score(at(1), 550), login(at(9)))
    assert closes(story.outputs) == []
    story.advance(at(12), final=True)
    (closure,) = closes(story.outputs)
    assert closure.decided_at == at(10)
    assert closure.trigger_event_id is None
    assert codes(closure) == ["LOW_CREDIT_SCORE"]
    assert closure.reasons[0].evidence["overrides"] == [REF]


def test_when_it_expires_a_condition_that_no_longer_holds_closes_nothing() -> None:
    story = Story()
    story.change(change(at(0), suppress_score(until=at(10))))
    story.apply(login(at(0, 1)), score(at(1), 550), score(at(5), 650))
    story.advance(at(12), final=True)
    assert closes(story.outputs) == []


def test_expiry_is_the_users_next_deadline() -> None:
    story = Story()
    story.change(change(at(0), suppress_score(until=at(10))))
    status = story.engine.status("u1")
    assert status is not None and status["next_deadline_at"] == rfc3339(at(10))


def test_a_suppression_of_one_rule_lets_another_close_without_it() -> None:
    story = Story()
    story.change(change(at(0), override(rule="DEVICE_SWITCHING", until=at(10))))
    story.apply(*(login(at(1, hours=n), f"phone-{n}") for n in range(4)))
    (device_flag,) = flags(story.outputs, "DEVICE_SWITCHING")
    assert device_flag.evidence["overrides"] == [REF]
    assert closes(story.outputs) == []
    story.apply(score(at(1, hours=5), 550))  # the device window is still full
    (closure,) = closes(story.outputs)
    assert codes(closure) == ["LOW_CREDIT_SCORE"]  # DEVICE_SWITCHING left out
    assert closure.reasons[0].evidence["overrides"] == [REF]


def test_a_suppression_of_every_rule_holds_them_all_back() -> None:
    story = Story()
    story.change(change(at(0), override(rule=None, until=at(10))))
    story.apply(*(login(at(1, hours=n), f"phone-{n}") for n in range(4)))
    story.apply(score(at(1, hours=5), 550))
    assert {f.signal for f in flags(story.outputs)} == {"DEVICE_SWITCHING", "LOW_CREDIT_SCORE"}
    assert closes(story.outputs) == []
    story.advance(at(11), final=True)
    (closure,) = closes(story.outputs)
    assert closure.decided_at == at(10)
    assert codes(closure) == ["LOW_CREDIT_SCORE"]  # the device window had emptied by then


def test_a_forced_closure_closes_now_with_the_note_and_blocks_restore_while_it_lasts() -> None:
    story = Story()
    story.apply(login(at(0)))
    forced = override("force_close", None, created=at(2), oid="fc-1", note="fraud ring, case 77")
    outputs = story.change(change(at(2), forced))
    (flag,) = flags(outputs, "MANUAL_REVIEW")
    (closure,) = closes(outputs)
    assert closure.decided_at == at(2)
    assert closure.trigger_event_id == "overrides@" + rfc3339(at(2))
    assert codes(closure) == ["MANUAL_REVIEW"]
    evidence = closure.reasons[0].evidence
    assert evidence["note"] == "fraud ring, case 77"
    assert evidence["overrides"] == [{"id": "fc-1", "kind": "force_close", "actor": "alice"}]
    assert "fraud ring" not in closure.reasons[0].message  # the note is not for the customer
    assert flag.evidence == evidence

    story.apply(login(at(95)), login(at(120)))
    story.advance(at(121), final=True)
    assert restores(story.outputs) == []
    status = story.engine.status("u1")
    assert status is not None
    assert {"code": "RISK_STILL_PRESENT", "rule": "MANUAL_REVIEW"} in [
        {"code": u["code"], "rule": u["rule"]} for u in status["unmet_restore_conditions"]
    ]
    assert [o["id"] for o in status["overrides"]] == ["fc-1"]

    story.change(change(at(122)))  # removed: the next event may restore
    story.apply(login(at(123)))
    (restore,) = restores(story.outputs)
    assert restore.decided_at == at(122)
    assert restore.reasons[0].evidence["overrides"] == [
        {"id": "fc-1", "kind": "force_close", "actor": "alice"}
    ]


def test_a_forced_closure_of_a_closed_line_closes_nothing_more() -> None:
    story = Story()
    story.apply(login(at(0)), score(at(1), 550))
    assert len(closes(story.outputs)) == 1
    forced = override("force_close", None, created=at(2), oid="fc-1", note="case 77")
    outputs = story.change(change(at(2), forced))
    assert closes(outputs) == []
    assert [f.signal for f in flags(outputs)] == ["MANUAL_REVIEW"]


def test_a_watch_holds_closures_back_and_shows_every_rules_evidence() -> None:
    story = Story()
    watch = override("watch", None, until=at(10), oid="w-1")
    story.change(change(at(0), watch))
    story.apply(login(at(0, 1)), score(at(1), 550))
    (flag,) = flags(story.outputs, "LOW_CREDIT_SCORE")
    assert flag.evidence["overrides"] == [{"id": "w-1", "kind": "watch", "actor": "alice"}]
    assert closes(story.outputs) == []
    status = story.engine.status("u1")
    assert status is not None
    assert status["watch_evidence"]["LOW_CREDIT_SCORE"]["credit_score"] == 550
    assert status["watch_evidence"]["CASH_OUT"] is None
    assert set(status["watch_evidence"]) >= {"DEVICE_SWITCHING", "SERIOUS_OVERDUE"}
    story.advance(at(11), final=True)
    (closure,) = closes(story.outputs)
    assert closure.decided_at == at(10)
    status = story.engine.status("u1")
    assert status is not None and status["overrides"] == [] and "watch_evidence" not in status


def test_removing_every_override_lifts_them_now() -> None:
    story = Story()
    story.change(change(at(0), suppress_score(until=at(10))))
    story.apply(login(at(0, 1)), score(at(1), 550))
    outputs = story.change(change(at(5)))  # an empty list, as a tombstone reads
    (closure,) = closes(outputs)
    assert closure.decided_at == at(5)
    assert closure.trigger_event_id == "overrides@" + rfc3339(at(5))
    assert closure.reasons[0].evidence["overrides"] == [REF]
    story.advance(at(11), final=True)
    assert len(closes(story.outputs)) == 1  # the old expiry fires nothing


def test_an_event_dated_before_the_override_is_judged_without_it() -> None:
    story = Story()
    story.apply(login(at(0)))
    story.change(change(at(2), suppress_score(created=at(2), until=at(10))))
    story.apply(score(at(1), 550))  # arrives after the override, dated before it
    (closure,) = closes(story.outputs)
    assert closure.decided_at == at(1)
    assert "overrides" not in closure.reasons[0].evidence


def test_an_event_dated_while_a_removed_override_held_closes_at_its_end() -> None:
    story = Story()
    story.apply(login(at(0)))
    story.change(change(at(1), suppress_score(created=at(1), until=at(10))))
    story.change(change(at(5)))  # removed early
    assert closes(story.outputs) == []
    story.apply(score(at(3), 550))  # dated while it held, arrives after its removal
    (closure,) = closes(story.outputs)
    assert closure.decided_at == at(5)
    assert closure.reasons[0].evidence["overrides"] == [REF]


def test_a_stale_or_repeated_change_changes_nothing() -> None:
    story = Story()
    first = change(at(2), suppress_score(until=at(10)))
    story.change(first)
    assert story.engine.apply_overrides(first).duplicate
    assert story.engine.apply_overrides(change(at(1))).duplicate  # older than the last one
    story.apply(login(at(2, 1)), score(at(3), 550))
    assert closes(story.outputs) == []


def test_a_change_dated_after_a_pending_deadline_waits_for_it() -> None:
    story = Story()
    story.change(change(at(0), suppress_score(until=at(10))))
    story.apply(login(at(0, 1)), score(at(1), 550))
    # Dated after the expiry, within its grace: applied after the expiry fires.
    step = story.engine.apply_overrides(change(at(10, seconds=60)))
    assert step.waiting
    story.outputs.extend(step.outputs)
    story.advance(at(11), final=True)
    (closure,) = closes(story.outputs)
    assert closure.decided_at == at(10)


def test_another_users_decisions_are_untouched() -> None:
    events = [login(at(0, 1)), score(at(1), 550)]

    def run(with_override: bool) -> list[str]:
        story = Story()
        if with_override:
            story.change(change(at(0), suppress_score(), user="u2"))
        story.apply(*events)
        story.advance(at(12), final=True)
        return [o.model_dump_json() for o in story.outputs]

    assert run(True) == run(False)


@pytest.mark.parametrize("action", ["flag", "off"])
def test_the_policy_can_make_forced_closures_flags_or_ignore_them(action: str) -> None:
    from workers.core.policy import parse_policy

    engine = Engine(parse_policy(f"[manual_review]\naction = '{action}'\n"))
    forced = override("force_close", None, created=at(2), oid="fc-1", note="case 77")
    outputs = engine.apply_overrides(change(at(2), forced)).outputs
    assert closes(outputs) == []
    assert len(flags(outputs, "MANUAL_REVIEW")) == (1 if action == "flag" else 0)


def test_an_override_state_survives_serialisation() -> None:
    story = Story()
    story.change(change(at(0), suppress_score(until=at(10))))
    story.apply(login(at(0, 1)))
    blob = story.engine.take_dirty()["u1"]
    engine = Engine(story.engine.policy)
    engine.restore("u1", blob)
    engine.advance(at(0, 1) + HOUR)
    outputs = engine.apply(score(at(1), 550)).outputs
    assert closes(outputs) == []
    assert closes(engine.advance(at(10) + DAY, final=True))[0].decided_at == at(10)


def test_an_expired_override_listed_again_stays_ended() -> None:
    story = Story()
    suppression = suppress_score(until=at(10))
    story.change(change(at(0), suppression))
    story.apply(login(at(0, 1)))
    story.advance(at(11), final=True)
    for day in (12, 13, 14):  # a producer that keeps the expired override in the list
        story.change(change(at(day), suppression))
    state = story.engine.state_of("u1")
    assert state is not None and len(state.overrides) == 1 and state.overrides[0].ended
    story.apply(score(at(15), 550))
    assert closes(story.outputs)[0].decided_at == at(15)
