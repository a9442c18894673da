"""CARD_BIND_UNBIND: a bank card bound and unbound within one hour, twice in 30 days.
Flag-only in the default policy: it raises flags and never closes a line by itself."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from schemas.events import Event
from workers.core.policy import parse_policy

from .scenario import (
    HOUR,
    SECOND,
    Timeline,
    at,
    card,
    closes,
    codes,
    flags,
    run,
)

CODE = "CARD_BIND_UNBIND"
# Two changes of a quick bind-unbind count for ACCOUNT_INFO_CHURN too (four a month close):
# most cases turn it off to watch this rule alone.
ALONE = parse_policy("[account_info_churn]\naction = 'off'\n")


def quick(start: datetime, card_id: str, held: timedelta = HOUR) -> list[Event]:
    """A card bound at ``start`` and unbound ``held`` later."""
    return [card(start, card_id, "bind"), card(start + held, card_id, "unbind")]


def alone(events: list[Event]) -> Timeline:
    """Run to day 80 (before INACTIVITY closes the line at day 90)."""
    return Timeline(ALONE).run(events, at(80))


def test_twice_within_30_days_raises_one_flag_and_closes_nothing() -> None:
    timeline = alone([*quick(at(0), "c1"), *quick(at(30) - HOUR, "c2")])
    raised = flags(timeline.outputs, CODE)
    assert len(raised) == 1
    assert raised[0].raised_at == at(30)
    assert raised[0].evidence == {
        "window": "30d",
        "quick_unbinds": 2,
        "threshold": 2,
        "unbound_within": "1h",
        "unbinds": [
            {"card_id": "c1", "unbound_at": "2026-03-02T10:00:00Z"},
            {"card_id": "c2", "unbound_at": "2026-04-01T09:00:00Z"},
        ],
    }
    assert closes(timeline.outputs) == []
    assert timeline.line_state() == "open"


@pytest.mark.parametrize(
    ("events", "why"),
    [
        ([*quick(at(0), "c1"), *quick(at(31), "c2")], "31 days apart"),
        ([*quick(at(0), "c1"), *quick(at(2), "c2", HOUR + SECOND)], "one held past the hour"),
        ([*quick(at(0), "c1")], "only once"),
        (
            [card(at(0), "c1"), card(at(0, 0.5), "c2", "unbind"), *quick(at(1), "c3")],
            "a different card unbound",
        ),
        (
            [*quick(at(0), "c1", HOUR / 2), card(at(0, 0.75), "c1", "unbind")],
            "unbound twice after one bind",
        ),
    ],
)
def test_near_misses_raise_nothing(events: list[Event], why: str) -> None:
    assert flags(alone(events).outputs, CODE) == [], why


def test_the_pair_counts_whatever_order_it_arrives_in() -> None:
    in_order = alone([*quick(at(0), "c1"), *quick(at(5), "c2")])
    unbind_first = alone([*quick(at(0), "c1"), *reversed(quick(at(5), "c2"))])
    assert [f.raised_at for f in flags(in_order.outputs, CODE)] == [at(5, 1)]
    assert [f.raised_at for f in flags(unbind_first.outputs, CODE)] == [at(5, 1)]
    assert (
        flags(in_order.outputs, CODE)[0].evidence == flags(unbind_first.outputs, CODE)[0].evidence
    )


def test_one_flag_per_episode_and_a_new_one_after_it_ends() -> None:
    events = [*quick(at(0), "c1"), *quick(at(1), "c2"), *quick(at(2), "c3")]
    events += [*quick(at(60), "c4"), *quick(at(61), "c5")]
    assert [f.raised_at for f in flags(alone(events).outputs, CODE)] == [at(1, 1), at(61, 1)]


def test_with_the_default_policy_the_same_changes_close_for_account_churn() -> None:
    timeline = run([*quick(at(0), "c1"), *quick(at(3), "c2")], until=at(10))
    assert [f.signal for f in timeline.flags] == ["ACCOUNT_INFO_CHURN", CODE]
    assert [codes(d) for d in closes(timeline.outputs)] == [["ACCOUNT_INFO_CHURN"]]


def test_as_close_line_it_closes_the_line_and_shows_in_the_status() -> None:
    policy = parse_policy(
        "[account_info_churn]\naction = 'off'\n[card_bind_unbind]\naction = 'close_line'\n"
    )
    timeline = Timeline(policy).run([*quick(at(0), "c1"), *quick(at(3), "c2")], until=at(4))
    [closed] = closes(timeline.outputs)
    assert codes(closed) == [CODE]
    assert closed.reasons[0].message.startswith("Bank cards were added to your account")
    status = timeline.engine.status("u1")
    assert status is not None
    assert CODE in [s["signal"] for s in status["active_signals"]]


def test_off_raises_nothing() -> None:
    policy = parse_policy(
        "[account_info_churn]\naction = 'off'\n[card_bind_unbind]\naction = 'off'\n"
    )
    timeline = Timeline(policy).run([*quick(at(0), "c1"), *quick(at(3), "c2")], until=at(10))
    assert timeline.outputs == []
