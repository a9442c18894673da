"""lineguard wire contracts: input events and output records (pydantic v2).

The JSON Schema of each model is generated into ``schemas/json/`` by
``python -m schemas.generate``; producers in other languages read those files.
"""

from schemas.events import (
    EVENT_TYPES,
    BankCardChange,
    DeviceChange,
    Event,
    EventBase,
    Login,
    ProfileChange,
    Repayment,
    Transaction,
    event_to_json,
    parse_event,
)
from schemas.outputs import REASON_CODES, DeadLetter, Decision, Flag, Reason, Rejection

__all__ = [
    "EVENT_TYPES",
    "REASON_CODES",
    "BankCardChange",
    "DeadLetter",
    "Decision",
    "DeviceChange",
    "Event",
    "EventBase",
    "Flag",
    "Login",
    "ProfileChange",
    "Reason",
    "Rejection",
    "Repayment",
    "Transaction",
    "event_to_json",
    "parse_event",
]
