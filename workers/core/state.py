"""Per-user state: bounded, versioned, serialised compactly.

Times are integer microseconds since the epoch (see ``timeutil``); money is integer fen
(hundredths of a yuan). Every collection is pruned by event time and capped in size, so a
user's state stays bounded whatever the length of their history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, is_dataclass
from operator import attrgetter
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

import orjson

from workers.errors import LineguardError

STATE_LAYOUT_VERSION = 6
"""Layout 6 put the user's facts first (``Facts``) and moved the two verdicts kept inside
fact records into the decision state: a loan's cash-out flag (``cash_outs``) and an
installment's overdue milestones reached (``milestones``). Layout 5 added the user's
overrides (``overrides``, ``overrides_changed_at``). Layout 4 added the bank-card changes
CARD_BIND_UNBIND keeps. Layout 3 derived the wire format from
the records' fields (``record_fields``). Layout 2 added waiting events, time-triggered output
records, installment payment times and when each paid installment was completed. Older
layouts are migrated on read (``MIGRATIONS``).

Adding a field: declare it (with a default), bump this version, add a migration that puts the
new field's value in older rows, and record the new field list in the layout test."""

# Hard caps that hold whatever the policy says (defence against hostile or looping producers).
MAX_DEVICES = 64
MAX_USES_PER_DEVICE = 32
MAX_CARDS = 32
MAX_BINDS_PER_CARD = 8
MAX_OUTFLOWS = 128
MAX_LOANS = 64
MAX_SETTLED = 64
MAX_INSTALLMENTS = 128
MAX_PAID_INSTALLMENTS = 64
MAX_CYCLE_ITEMS = 128
MAX_CHURN_ITEMS = 128
MAX_RECENT_FLAGS = 16
MAX_WAITING = 64
MAX_TIMED = 16
MAX_PAYMENTS = 16
MAX_SCORES = 8
MAX_ENDED_OVERRIDES = 16

LINE_OPEN = "open"
LINE_CLOSED = "closed"
LINE_RESTORE_ELIGIBLE = "restore_eligible"


class StateError(LineguardError):
    """A serialised state cannot be read (corrupt or from an unknown layout)."""


@dataclass(slots=True)
class Loan:
    loan_id: str
    drawn_at: int
    amount: int
    term_months: int
    product: str
    event_id: str
    final_due: int


@dataclass(slots=True)
class Installment:
    loan_id: str
    number: int
    product: str
    due_day: int
    billed: int
    paid: int = 0
    payments: list[list[int]] = field(default_factory=list)
    """[occurred_at, fen] of the money attributed to it, in time order (bounded)."""


@dataclass(slots=True)
class Outflow:
    at: int
    amount: int
    card_id: str
    event_id: str


@dataclass(slots=True)
class UserOverride:
    """An override of the user's decisions (``schemas.control.Override``), as the core keeps
    it: while it lasts, and for a while after it ended (for events dated before its end that
    arrive later)."""

    override_id: str
    kind: str
    rule: str | None
    actor: str
    reason: str
    note: str
    created_at: int
    ends_at: int | None
    """When it stops holding (exclusive): its expiry, or when a change removed it."""
    ended: bool = False
    """Its end has taken effect (the expiry fired, or a change removed it)."""


@dataclass(slots=True)
class Facts:
    """What the user did, as far as lineguard remembers it: the same whichever policy judges
    it. Facts hold no verdict of a policy; how long they are kept follows the windows of the
    policies that read them (``workers.core.retention``)."""

    first_at: int | None = None
    last_at: int | None = None
    seen: dict[str, int] = field(default_factory=dict)
    """Event ids applied, with their times (the dedupe window)."""
    last_drawdown_at: int | None = None
    last_login_at: int | None = None
    score: int | None = None
    score_at: int | None = None
    scores: list[list[int]] = field(default_factory=list)
    """The latest credit scores, [occurred_at, score] in time order (bounded)."""
    devices: dict[str, list[int]] = field(default_factory=dict)
    """Device id -> when it was used, in time order."""
    card_binds: dict[str, list[int]] = field(default_factory=dict)
    """Card id -> when it was bound, in time order."""
    outflows: list[Outflow] = field(default_factory=list)
    card_changes: list[tuple[int, str, str]] = field(default_factory=list)
    """Recent bank-card binds and unbinds: (occurred_at, card_id, action), in time order."""
    loans: dict[str, Loan] = field(default_factory=dict)
    settled: dict[str, int] = field(default_factory=dict)
    installments: dict[str, Installment] = field(default_factory=dict)
    paid_installments: dict[str, list[int]] = field(default_factory=dict)
    """Installment key -> [completed_at, due_day]: when its payments reached the bill."""
    credit: dict[str, int] = field(default_factory=dict)
    last_cleared_at: int | None = None
    """When a past-due installment was last paid off (a negative signal)."""


@dataclass(slots=True)
class UserState(Facts):
    """Everything lineguard remembers about one user under one policy: the user's facts
    (``Facts``), then the policy's decision state: the line's lifecycle, the flags and
    episodes it raised, its deadlines, and what its rules derived from the facts with its
    own thresholds."""

    line: str = LINE_OPEN
    cycle: int = 0
    closed_at: int | None = None
    close_reasons: list[dict[str, Any]] = field(default_factory=list)
    cooling: int = 0
    anchor: int | None = None
    awaiting_restore: bool = False
    eligible_at: int | None = None
    episodes: dict[str, int] = field(default_factory=dict)
    recent_flags: list[dict[str, Any]] = field(default_factory=list)
    next_deadline: int | None = None
    waiting: list[tuple[int, str, str]] = field(default_factory=list)
    """Events dated at or after the pending deadline, held until it fires: (occurred_at,
    event_id, the event's JSON), in time order."""
    timed: list[list[Any]] = field(default_factory=list)
    """Time-triggered outputs that a late event may correct: ``[kind, code, at, key, id,
    cycle]`` with kind ``flag`` or ``close`` (code: the closure's reason codes, joined)."""
    quick_cycles: list[tuple[int, str]] = field(default_factory=list)
    early_settlements: list[tuple[int, str]] = field(default_factory=list)
    churn: list[tuple[int, str, str]] = field(default_factory=list)
    cash_outs: list[str] = field(default_factory=list)
    """The drawdown event ids of the loans CASH_OUT flagged (of loans still in the facts)."""
    milestones: dict[str, int] = field(default_factory=dict)
    """Installment key -> how many of SERIOUS_OVERDUE's milestones it reached (unpaid ones)."""
    overrides: list[UserOverride] = field(default_factory=list)
    """The user's overrides: those in force, and those ended recently (bounded)."""
    overrides_changed_at: int | None = None
    """The time of the last override change applied (an older or equal one is stale)."""


FACT_FIELDS: tuple[str, ...] = tuple(item.name for item in fields(Facts))
"""The fields of ``UserState`` that are the user's facts, shared by every policy."""
DECISION_FIELDS: tuple[str, ...] = tuple(
    item.name for item in fields(UserState) if item.name not in FACT_FIELDS
)
"""The fields of ``UserState`` that are one policy's own."""


def installment_key(loan_id: str, number: int) -> str:
    return f"{loan_id}#{number}"


def serialize(state: UserState) -> bytes:
    """Compact positional JSON with the layout version in front: the state, and every record
    in it, is an array of its fields' values in declaration order (see ``record_fields``)."""
    return orjson.dumps(
        [STATE_LAYOUT_VERSION, *_STATE_VALUES(state)],
        default=_record_values,
        option=orjson.OPT_PASSTHROUGH_DATACLASS,
    )


def deserialize(blob: bytes) -> UserState:
    """Read a state written by this layout or an older one (migrated, one step at a time)."""
    try:
        row = orjson.loads(blob)
    except orjson.JSONDecodeError as exc:
        raise StateError(f"state is not valid JSON: {exc}") from exc
    version = row[0] if isinstance(row, list) and row else None
    if type(version) is not int or (version not in MIGRATIONS and version != STATE_LAYOUT_VERSION):
        raise StateError(f"unknown state layout version {version!r}")
    while version != STATE_LAYOUT_VERSION:
        row = MIGRATIONS[version](row)
        version = row[0]
    values = row[1:]
    if len(values) != len(_STATE_FIELDS):
        raise StateError(f"state does not match layout {version}: {len(values)} fields")
    try:
        for index, read in _STATE_READERS:
            values[index] = read(values[index])
        return UserState(*values)
    except (TypeError, ValueError) as exc:
        raise StateError(f"state does not match layout {version}: {exc}") from exc


_share = "".join(f"    other.{name} = owner.{name}\n" for name in FACT_FIELDS)
_namespace: dict[str, Any] = {}
exec(compile(f"def share_facts(owner, other):\n{_share}", "<share_facts>", "exec"), _namespace)
share_facts: Callable[[Facts, Facts], None] = _namespace["share_facts"]
"""Make ``other`` hold the same fact objects as ``owner`` (the user's state under another
policy that shares the facts)."""


# Field-derived encoding. Records (dataclasses) are written as arrays of their field values
# in declaration order (orjson asks ``_record_values`` for them), and JSON turns tuples into
# arrays; reading rebuilds both from the declared types. Other values go as they are.

_Reader = Callable[[Any], Any]


def _is_record(hint: Any) -> bool:
    return isinstance(hint, type) and is_dataclass(hint)


def _is_plain_record(hint: Any) -> bool:
    """A record whose fields all read as they are."""
    return _is_record(hint) and not _field_readers(hint)


def _records_in(hint: Any) -> list[type[Any]]:
    return [hint] if _is_record(hint) else [r for a in get_args(hint) for r in _records_in(a)]


def _all_records() -> list[type[Any]]:
    """The state and every record type reachable from its fields, in discovery order."""
    found: list[type[Any]] = [UserState]
    for record in found:  # grows while it is walked
        hints = get_type_hints(record)
        for item in fields(record):
            found.extend(r for r in _records_in(hints[item.name]) if r not in found)
    return found


def record_fields() -> dict[str, list[str]]:
    """Each record's field names in wire order, the state first: what a layout is made of."""
    return {record.__name__: [f.name for f in fields(record)] for record in _all_records()}


def _reader(hint: Any) -> _Reader | None:
    """How to rebuild a value of type ``hint`` from its JSON form; None: as read."""
    if _is_record(hint):
        return _record_reader(hint)
    origin, args = get_origin(hint), get_args(hint)
    if origin is tuple:
        parts = [_reader(arg) for arg in args]
        if not any(parts):
            return tuple
        return lambda value: tuple(
            v if read is None else read(v) for read, v in zip(parts, value, strict=True)
        )
    if origin is list:
        if _is_plain_record(args[0]):  # the common case, spelt out: it is the hot one
            record = args[0]
            return lambda value: [record(*v) for v in value]
        item = _reader(args[0])
        return None if item is None else lambda value: [item(v) for v in value]
    if origin is dict:
        if _is_plain_record(args[1]):
            record = args[1]
            return lambda value: {k: record(*v) for k, v in value.items()}
        entry = _reader(args[1])
        return None if entry is None else lambda value: {k: entry(v) for k, v in value.items()}
    if origin in (Union, UnionType):
        parts = [_reader(arg) for arg in args if arg is not type(None)]
        if not any(parts):
            return None
        if len(parts) != 1 or parts[0] is None:
            raise TypeError(f"no state encoding for {hint}")
        only = parts[0]
        return lambda value: None if value is None else only(value)
    return None


def _field_readers(record: type[Any]) -> list[tuple[int, _Reader]]:
    hints = get_type_hints(record)
    found = [(index, _reader(hints[item.name])) for index, item in enumerate(fields(record))]
    return [(index, read) for index, read in found if read is not None]


def _record_reader(record: type[Any]) -> _Reader:
    readers = _field_readers(record)
    if not readers:
        return lambda value: record(*value)

    def read(value: list[Any]) -> Any:
        values = list(value)
        for index, read_field in readers:
            values[index] = read_field(values[index])
        return record(*values)

    return read


def _values_getter(record: type[Any]) -> Callable[[Any], tuple[Any, ...]]:
    names = [f.name for f in fields(record)]
    if len(names) == 1:
        (name,) = names
        return lambda value: (getattr(value, name),)
    return attrgetter(*names)


_STATE_FIELDS = record_fields()["UserState"]
_STATE_VALUES = _values_getter(UserState)
_STATE_READERS = _field_readers(UserState)
_GETTERS = {record: _values_getter(record) for record in _all_records()[1:]}


def _record_values(value: Any) -> tuple[Any, ...]:
    """orjson's hook for a nested record: its field values in declaration order."""
    try:
        return _GETTERS[type(value)](value)
    except KeyError:
        raise TypeError(f"{type(value).__name__} is not part of the state") from None


REPLACED_NOT_CHANGED = frozenset(
    {
        "close_reasons",
        "recent_flags",
        "timed",
        "episodes",
        "quick_cycles",
        "early_settlements",
        "churn",
        "outflows",
        "card_changes",
        "cash_outs",
        "milestones",
        "overrides",
        "card_binds",
        "loans",
        "settled",
        "credit",
        "paid_installments",
    }
)
"""Collections the core only ever replaces with new ones during an event (a change copies the
one it found, or builds another, and changes only that), so that saving them needs no copy.
Other collections change in place and are saved as copies: those that an event of their
types nearly always changes (installments, devices, scores), where a copy at the change would
cost the same."""


class FieldSaver:
    """Saves some of a state's fields so that they can be put back: scalars and the
    collections in ``REPLACED_NOT_CHANGED`` as they are, other collections as shallow copies
    (what changes them must replace, not change, the records in them). Cheap enough to run
    before every event: ``save`` and ``restore`` are compiled for their fields, one tuple
    built or unpacked, as ``dataclasses`` compiles its methods."""

    __slots__ = ("restore", "save")

    def __init__(self, names: tuple[str, ...]) -> None:
        hints = get_type_hints(UserState)
        unknown = set(names) - set(_STATE_FIELDS)
        if unknown:
            raise ValueError(f"not fields of UserState: {sorted(unknown)}")
        ordered = [name for name in _STATE_FIELDS if name in names]
        copied = {
            name
            for name in ordered
            if get_origin(hints[name]) in (list, dict) and name not in REPLACED_NOT_CHANGED
        }
        saved = [f"s.{name}.copy()" if name in copied else f"s.{name}" for name in ordered]
        targets = "".join(f"s.{name}, " for name in ordered)
        source = (
            f"def save(s):\n    return ({''.join(f'{item}, ' for item in saved)})\n"
            f"def restore(s, v):\n    ({targets}) = v\n"
        )
        namespace: dict[str, Any] = {}
        exec(compile(source, f"<FieldSaver {' '.join(ordered)}>", "exec"), namespace)
        self.save: Callable[[UserState], tuple[Any, ...]] = namespace["save"]
        """The fields' values, collections to be changed copied."""
        self.restore: Callable[[UserState, tuple[Any, ...]], None] = namespace["restore"]
        """Put back what ``save`` returned."""


# Migrations: each turns a row of its layout into a row of the next one. They are written
# against the layouts as they were, never against the classes above, which keep changing.

_LAYOUT_2_TO_3_ORDER = (*range(1, 15), 33, 15, 16, 17, 18, 19, 20, *range(21, 33))
"""Layout 3's fields (declaration order) as positions in a layout 2 row."""


def _migrate_1_to_2(row: list[Any]) -> list[Any]:
    """Layout 1 to 2: installments gain payment times, a paid installment records
    [completed_at, due_day] (due day unknown: -1), four fields appended (the latest score
    starts the score history)."""
    if len(row) != 30:
        raise StateError(f"state does not match layout 1: {len(row)} fields")
    migrated = list(row)
    # Money already attributed is taken as paid before anything that could still be corrected.
    migrated[21] = {
        key: [*item, [[0, item[5]]] if item[5] else []] for key, item in row[21].items()
    }
    migrated[22] = {key: [at, -1] for key, at in row[22].items()}
    score, score_at = row[13], row[14]
    migrated.extend([None, [], [], [] if score is None else [[score_at, score]]])
    migrated[0] = 2
    return migrated


def _migrate_2_to_3(row: list[Any]) -> list[Any]:
    """Layout 2 to 3: fields in declaration order (the score history moves up beside the
    score), remembered ids as an object, a loan's id written in its record too."""
    if len(row) != 34:
        raise StateError(f"state does not match layout 2: {len(row)} fields")
    try:
        seen_ids, seen_at = row[15]
        seen = dict(zip(seen_ids, seen_at, strict=True))
        loans = {key: [key, *loan] for key, loan in row[19].items()}
    except (TypeError, ValueError, AttributeError) as exc:
        raise StateError(f"state does not match layout 2: {exc}") from exc
    migrated = [3, *(row[index] for index in _LAYOUT_2_TO_3_ORDER)]
    migrated[16], migrated[20] = seen, loans
    return migrated


def _migrate_3_to_4(row: list[Any]) -> list[Any]:
    """Layout 3 to 4: no card changes yet (CARD_BIND_UNBIND counts from the upgrade)."""
    if len(row) != 34:
        raise StateError(f"state does not match layout 3: {len(row) - 1} fields")
    return [4, *row[1:], []]


def _migrate_4_to_5(row: list[Any]) -> list[Any]:
    """Layout 4 to 5: no overrides yet."""
    if len(row) != 35:
        raise StateError(f"state does not match layout 4: {len(row) - 1} fields")
    return [5, *row[1:], [], None]


_LAYOUT_5_FIELDS = (
    "first_at", "last_at", "line", "cycle", "closed_at", "close_reasons", "cooling", "anchor",
    "awaiting_restore", "eligible_at", "last_drawdown_at", "last_login_at", "score",
    "score_at", "scores", "seen", "devices", "card_binds", "outflows", "loans", "settled",
    "installments", "paid_installments", "credit", "quick_cycles", "early_settlements",
    "churn", "episodes", "recent_flags", "next_deadline", "last_cleared_at", "waiting",
    "timed", "card_changes", "overrides", "overrides_changed_at",
)  # fmt: skip
_LAYOUT_6_FIELDS = (
    "first_at", "last_at", "seen", "last_drawdown_at", "last_login_at", "score", "score_at",
    "scores", "devices", "card_binds", "outflows", "card_changes", "loans", "settled",
    "installments", "paid_installments", "credit", "last_cleared_at", "line", "cycle",
    "closed_at", "close_reasons", "cooling", "anchor", "awaiting_restore", "eligible_at",
    "episodes", "recent_flags", "next_deadline", "waiting", "timed", "quick_cycles",
    "early_settlements", "churn", "cash_outs", "milestones", "overrides",
    "overrides_changed_at",
)  # fmt: skip


def _migrate_5_to_6(row: list[Any]) -> list[Any]:
    """Layout 5 to 6: the facts first; a loan's cash-out flag becomes its drawdown's id in
    ``cash_outs``, an installment's milestones reached an entry of ``milestones``."""
    if len(row) != len(_LAYOUT_5_FIELDS) + 1:
        raise StateError(f"state does not match layout 5: {len(row) - 1} fields")
    value = dict(zip(_LAYOUT_5_FIELDS, row[1:], strict=True))
    try:
        loans, installments = value["loans"], value["installments"]
        value["cash_outs"] = [loan[5] for loan in loans.values() if loan[7]]
        value["loans"] = {key: loan[:7] for key, loan in loans.items()}
        value["milestones"] = {key: item[6] for key, item in installments.items() if item[6]}
        value["installments"] = {key: [*item[:6], item[7]] for key, item in installments.items()}
    except (TypeError, IndexError, AttributeError) as exc:
        raise StateError(f"state does not match layout 5: {exc}") from exc
    return [6, *(value[name] for name in _LAYOUT_6_FIELDS)]


MIGRATIONS: dict[int, Callable[[list[Any]], list[Any]]] = {
    1: _migrate_1_to_2,
    2: _migrate_2_to_3,
    3: _migrate_3_to_4,
    4: _migrate_4_to_5,
    5: _migrate_5_to_6,
}
"""Layout version -> the step that reads a row of it as the next layout; applied in turn."""
