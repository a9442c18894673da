"""One valid body of each kind of event, without its ids and time (``event_id``,
``user_id``, ``occurred_at``): the seeds the decoder's fuzz test and benchmark mutate."""

from __future__ import annotations

from typing import Any

SAMPLE_BODIES: list[dict[str, Any]] = [
    {"type": "login", "device_id": "d1", "ip": "10.0.0.1"},
    {"type": "device_change", "device_id": "d2", "previous_device_id": "d1"},
    {"type": "bank_card_change", "action": "bind", "card_id": "c1"},
    {"type": "profile_change", "field": "credit_score", "credit_score": 640},
    {"type": "transaction", "kind": "purchase", "amount": "12.50", "merchant_id": "m1"},
    {
        "type": "transaction",
        "kind": "loan_drawdown",
        "amount": 3000,
        "loan_id": "l1",
        "term_months": 3,
    },
    {
        "type": "repayment",
        "kind": "installment_due",
        "loan_id": "l1",
        "product": "jiebei",
        "installment": 1,
        "due_date": "2026-04-02",
        "amount": "1000.00",
    },
    {"type": "repayment", "kind": "repayment", "loan_id": "l1", "product": "reserve", "amount": 1},
]
