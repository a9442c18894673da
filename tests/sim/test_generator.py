"""The generator: deterministic, time-ordered, contract-valid, streaming, realistically skewed."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import orjson
import pytest
from pydantic import ValidationError

from schemas.events import EVENT_TYPES, Login
from workers.sim.generator import (
    DEFAULT_MIX,
    SimulationConfig,
    generate,
    generate_records,
    labels,
)

SMALL = SimulationConfig(users=60, days=120, seed=11)


def test_same_config_same_bytes_and_labels() -> None:
    assert list(generate_records(SMALL)) == list(generate_records(SMALL))
    assert list(labels(SMALL)) == list(labels(SMALL))


def test_another_seed_another_population() -> None:
    other = SMALL.model_copy(update={"seed": 12})
    assert list(generate_records(SMALL)) != list(generate_records(other))
    assert [label.archetype for label in labels(SMALL)] != [
        label.archetype for label in labels(other)
    ]


def test_a_users_history_does_not_depend_on_the_population_size() -> None:
    small = [r for r in generate_records(SMALL) if r.user_id == "u00000007"]
    large = SMALL.model_copy(update={"users": 150})
    assert small
    assert small == [r for r in generate_records(large) if r.user_id == "u00000007"]


def test_spilled_merge_equals_in_memory_sort() -> None:
    in_memory = list(generate_records(SMALL))
    spilled = list(generate_records(SMALL, batch_users=7))
    assert spilled == in_memory


def test_labels_arrive_once_per_user_in_order_while_streaming() -> None:
    seen: list[str] = []
    for _ in generate_records(SMALL, on_label=lambda label: seen.append(label.user_id)):
        pass
    assert seen == [f"u{index:08d}" for index in range(SMALL.users)]
    assert [label.user_id for label in labels(SMALL)] == seen


def test_events_are_valid_in_time_order_inside_the_span_with_all_six_types() -> None:
    events = list(generate(SMALL))
    moments = [event.occurred_at for event in events]
    assert moments == sorted(moments)
    assert SMALL.start <= moments[0] and moments[-1] < SMALL.ends_at
    assert {event.type for event in events} == set(EVENT_TYPES)


def test_records_carry_type_and_key_of_their_json() -> None:
    for record in generate_records(SMALL):
        body = orjson.loads(record.value)
        assert (body["type"], body["user_id"]) == (record.event_type, record.user_id)


@pytest.mark.parametrize(("rate", "expect_duplicates"), [(0.0, False), (0.05, True)])
def test_duplicates_are_exact_redeliveries(rate: float, expect_duplicates: bool) -> None:
    config = SMALL.model_copy(update={"duplicate_rate": rate})
    values = Counter(record.value for record in generate_records(config))
    ids = Counter(orjson.loads(value)["event_id"] for value in values)
    assert max(ids.values()) == 1  # a repeated id always carries the very same bytes
    assert (max(values.values()) > 1) is expect_duplicates


def test_activity_is_skewed_across_users() -> None:
    config = SimulationConfig(users=400, days=60, seed=3, mix={"ordinary": 1})
    logins = Counter(event.user_id for event in generate(config) if isinstance(event, Login))
    busiest = sorted(logins.values(), reverse=True)
    top_tenth = sum(busiest[: len(busiest) // 10])
    assert top_tenth > 0.3 * sum(busiest)  # a uniform population would give about 10%


def test_activity_follows_the_daily_cycle() -> None:
    config = SimulationConfig(users=200, days=30, seed=4, mix={"ordinary": 1})
    hours = Counter(e.occurred_at.hour for e in generate(config) if isinstance(e, Login))
    night_in_china = sum(hours[hour] for hour in range(17, 22))  # 01:00 to 06:00 at UTC+8
    evening_in_china = sum(hours[hour] for hour in range(11, 16))  # 19:00 to 24:00
    assert evening_in_china > 5 * night_in_china


def test_the_mix_decides_the_archetype_shares() -> None:
    config = SimulationConfig(users=2000, days=120, seed=5, mix={"ordinary": 3, "low_score": 1})
    shares = Counter(label.archetype for label in labels(config))
    assert set(shares) == {"ordinary", "low_score"}
    assert 0.2 < shares["low_score"] / config.users < 0.3


def test_default_mix_leaves_out_archetypes_that_need_a_longer_span() -> None:
    short = SimulationConfig(days=30).resolved_mix()
    assert "dormant" not in short and "restored" not in short
    assert "cash_out" in short
    assert sum(short.values()) == pytest.approx(1.0)
    assert set(SimulationConfig(days=180).resolved_mix()) == set(DEFAULT_MIX)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"mix": {"gambler": 1.0}}, "unknown archetype"),
        ({"mix": {"dormant": 1.0}, "days": 30}, "needs a span of at least"),
        ({"mix": {"ordinary": 0.0}}, "at least one positive weight"),
        ({"start": datetime(2026, 1, 1)}, "offset"),
        ({"users": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_configs_are_refused(update: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SimulationConfig.model_validate({"users": 10, **update})
