"""The input streams the core benchmarks measure, as JSON lines in ``occurred_at`` order.

- ``simulated``: the project's simulated population (``workers.sim``), default mix: what
  ``lineguard simulate`` writes and ``make demo`` streams.
- ``adversarial``: a decision-heavy stream: every user acts out one risky scenario in a few
  events (a score under 600, four devices in a day, a cash-out to a fresh card, quick loan
  cycles, early settlements, an unpaid bill, churn of cards and phone, several of them at
  once, a closure followed by a restore, a dormant line), so that about one event in four
  closes a line or makes a restore eligible and about one in three raises a flag.
- ``stress``: the mixed stream of ``replay_bench.py``: all six event types over 180 days, a
  heavy-tailed spread of events over users, bills mostly paid on the user's next event.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from replay_bench import stream as stress_stream

from workers.sim.generator import SimulationConfig, generate_records

START = datetime(2026, 1, 1, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

Body = dict[str, Any]
Scenario = Callable[[str, datetime], list[tuple[datetime, Body]]]


def simulated(users: int, days: int, seed: int) -> list[bytes]:
    config = SimulationConfig(users=users, days=days, seed=seed)
    return [record.value for record in generate_records(config)]


def stress(events: int, users: int, seed: int) -> list[bytes]:
    return list(stress_stream(events, users, seed))


def adversarial(users: int, seed: int, span_days: int = 180) -> list[bytes]:
    """``users`` users, each acting out one scenario (round robin) from a random start within
    ``span_days``; every event JSON, in time order."""
    rng = random.Random(seed)
    timed: list[tuple[datetime, int, bytes]] = []
    serial = 0
    for index in range(users):
        user_id = f"adv{index:08d}"
        begin = START + timedelta(seconds=rng.randrange(span_days * 86_400))
        for at, body in SCENARIOS[index % len(SCENARIOS)](user_id, begin):
            serial += 1
            record = {
                "event_id": f"adv-{serial}",
                "user_id": user_id,
                "occurred_at": at.isoformat().replace("+00:00", "Z"),
                **body,
            }
            timed.append((at, serial, orjson.dumps(record)))
    timed.sort(key=lambda item: (item[0], item[1]))
    return [line for _, _, line in timed]


def _login(device: str) -> Body:
    return {"type": "login", "device_id": device, "ip": "10.0.0.1"}


def _score(value: int) -> Body:
    return {"type": "profile_change", "field": "credit_score", "credit_score": value}


def _card(card: str, action: str = "bind") -> Body:
    return {"type": "bank_card_change", "action": action, "card_id": card}


def _drawdown(loan: str, amount: str, term: int = 3) -> Body:
    return {
        "type": "transaction",
        "kind": "loan_drawdown",
        "amount": amount,
        "loan_id": loan,
        "term_months": term,
    }


def _settle(loan: str, amount: str) -> Body:
    return {
        "type": "repayment",
        "kind": "repayment",
        "loan_id": loan,
        "product": "jiebei",
        "amount": amount,
        "settles_loan": True,
    }


def _low_score(user: str, t: datetime) -> list[tuple[datetime, Body]]:
    return [(t, _login("dev-1")), (t + HOUR, _score(540))]


def _devices(user: str, t: datetime) -> list[tuple[datetime, Body]]:
    return [(t + i * 2 * HOUR, _login(f"dev-{i}")) for i in range(4)]


def _churn(user: str, t: datetime) -> list[tuple[datetime, Body]]:
    return [
        (t, _card("card-1")),
        (t + 2 * DAY, {"type": "profile_change", "field": "phone"}),
        (t + 5 * DAY, _card("card-1", "unbind")),
        (t + 9 * DAY, {"type": "profile_change", "field": "identity"}),
    ]


def _cash_out(user: str, t: datetime) -> list[tuple[datetime, Body]]:
    outflow = {"type": "transaction", "kind": "transfer_out", "amount": "4500.00"}
    return [
        (t, _card("card-x")),
        (t + 2 * HOUR, _drawdown("loan-1", "5000.00")),
        (t + 3 * HOUR, {**outflow, "card_id": "card-x"}),
    ]


def _swiping(user: str, t: datetime) -> list[tuple[datetime, Body]]:
    events = []
    for i in range(3):
        events.append((t + i * 5 * DAY, _drawdown(f"loan-{i}", "2000.00")))
        events.append((t + i * 5 * DAY + 20 * HOUR, _settle(f"loan-{i}", "2000.00")))
    return events


def _early(user: str, t: datetime) -> list[tuple[datetime, Body]]:
    events = []
    for i in range(4):
        events.append((t + i * 10 * DAY, _drawdown(f"loan-{i}", "3000.00", term=6)))
        events.append((t + i * 10 * DAY + 4 * DAY, _settle(f"loan-{i}", "3000.00")))
    return events


def _overdue(user: str, t: datetime) -> list[tuple[datetime, Body]]:
    bill = {
        "type": "repayment",
        "kind": "installment_due",
        "loan_id": "loan-1",
        "product": "jiebei",
        "installment": 1,
        "due_date": (t + 3 * DAY).date().isoformat(),
        "amount": "400.00",
    }
    return [(t, _drawdown("loan-1", "1200.00")), (t + HOUR, bill)]


def _combined(user: str, t: datetime) -> list[tuple[datetime, Body]]:
    """A cash-out from new devices by a user whose score just fell: one closure, many reasons."""
    return [
        *_devices(user, t),
        (t + 7 * HOUR, _score(520)),
        *((at + 7 * HOUR, body) for at, body in _cash_out(user, t)),
    ]


def _restored(user: str, t: datetime) -> list[tuple[datetime, Body]]:
    return [
        (t, _score(540)),
        (t + DAY, _score(720)),
        (t + 80 * DAY, _login("dev-1")),
        (t + 92 * DAY, _login("dev-1")),
    ]


def _dormant(user: str, t: datetime) -> list[tuple[datetime, Body]]:
    return [(t, _login("dev-1")), (t + 95 * DAY, _login("dev-1"))]


SCENARIOS: tuple[Scenario, ...] = (
    _low_score,
    _devices,
    _churn,
    _cash_out,
    _swiping,
    _early,
    _overdue,
    _combined,
    _restored,
    _dormant,
)


def last_moment(lines: list[bytes]) -> datetime:
    """The ``occurred_at`` of the last line: a replay runs its clock up to it."""
    text = orjson.loads(lines[-1])["occurred_at"]
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
