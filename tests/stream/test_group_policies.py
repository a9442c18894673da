"""Since when the workers of a group disagree on the live policy, and when /readyz fails."""

from __future__ import annotations

from workers.stream.group_policies import GroupPolicies


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_disagreement_fails_readiness_only_once_it_lasts_past_the_limit() -> None:
    clock = Clock()
    group = GroupPolicies(10, clock)
    group.record("v1", {"http://b:6066": "v1"})
    assert group.since is None and group.reason("v1") is None
    clock.now = 105
    group.record("v1", {"http://b:6066": "v2", "http://c:6066": "v1"})
    assert group.since == 105
    clock.now = 114.9
    group.record("v1", {"http://b:6066": "v2"})  # the start of the disagreement is kept
    assert group.reason("v1") is None
    clock.now = 115
    reason = group.reason("v1")
    assert reason is not None
    assert "different live policies for over 10 s: v1 here, v2 at http://b:6066" in reason
    assert "http://c:6066" not in reason
    group.record("v2", {"http://b:6066": "v2"})  # this one switched too: agreement
    assert group.since is None and group.reason("v2") is None


def test_members_that_do_not_answer_neither_agree_nor_disagree() -> None:
    clock = Clock()
    group = GroupPolicies(10, clock)
    group.record("v1", {"http://b:6066": "v2"})
    clock.now += 60
    group.record("v1", {})  # b did not answer: nothing known disagrees
    assert group.reason("v1") is None


def test_with_a_limit_of_zero_nobody_is_asked() -> None:
    assert not GroupPolicies(0, Clock()).due()
    assert GroupPolicies(10, Clock()).due()


async def test_asking_an_unreachable_member_records_nothing() -> None:
    clock = Clock()
    group = GroupPolicies(10, clock)
    await group.ask("v1", ["http://127.0.0.1:9"])  # the discard port: nobody listens
    assert group.others == {} and group.since is None
    assert not group.due()  # asked just now
