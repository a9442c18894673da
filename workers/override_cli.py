"""``lineguard override``: set, list and remove one user's overrides.

- ``add USER --kind suppress|force_close|watch [--rule CODE] [--until TIME] --actor NAME
  --reason TEXT [--note TEXT]``: adds one override (``--until`` is required except for
  force_close; ``--rule`` only for suppress, none meaning every rule; ``--note`` required
  for force_close);
- ``list USER``: the user's overrides as the topic holds them now;
- ``remove USER OVERRIDE_ID --actor NAME``: removes one.

Each change reads the user's current record from ``lineguard.overrides`` (the user's
partition, up to its end) and writes the new full list, dated now (``--at`` dates it
otherwise: replaying history on the event clock); overrides whose expiry has passed are
left out of it. Brokers and security come from the ``LINEGUARD_*`` settings, as for the
worker.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from schemas.control import Override, OverrideRecord
from schemas.outputs import REASON_CODES
from workers.decoding import describe
from workers.errors import LineguardError
from workers.problems import Problem
from workers.replay import parse_moment
from workers.settings import Settings

KINDS = ("suppress", "force_close", "watch")
T = TypeVar("T")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--brokers", default=None, help="bootstrap servers, comma separated")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add an override to a user")
    add.add_argument("user", metavar="USER")
    add.add_argument("--kind", choices=KINDS, required=True)
    add.add_argument(
        "--rule",
        choices=[code for code in REASON_CODES if code != "MANUAL_REVIEW"],
        help="for suppress: the rule held back (default: every rule)",
    )
    add.add_argument("--until", type=parse_moment, help="when it ends (not for force_close)")
    add.add_argument("--actor", required=True, help="who sets it")
    add.add_argument("--reason", required=True, help="why (the appeal, the case)")
    add.add_argument("--note", default="", help="free text; required for force_close")
    add.add_argument("--id", dest="override_id", help="its id (default: made up)")
    _at_option(add)
    listing = actions.add_parser("list", help="a user's overrides")
    listing.add_argument("user", metavar="USER")
    remove = actions.add_parser("remove", help="remove one of a user's overrides")
    remove.add_argument("user", metavar="USER")
    remove.add_argument("override_id", metavar="OVERRIDE_ID")
    remove.add_argument("--actor", required=True, help="who removes it")
    _at_option(remove)


def _at_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--at",
        type=parse_moment,
        default=None,
        help="the change's time (default: now; a past time replays history on the event clock)",
    )


def run(args: argparse.Namespace) -> int:
    settings = Settings(brokers=args.brokers) if args.brokers else Settings()
    at = getattr(args, "at", None) or datetime.now(UTC)
    new = _override(args, at) if args.action == "add" else {}
    current = _run(settings, _read(settings, args.user))
    if args.action == "list":
        return _list(args.user, current)
    kept = [] if current is None else _still_in_force(current, at)
    if args.action == "add":
        if any(o["id"] == new["id"] for o in kept):
            raise Problem(f"user {args.user} already has an override {new['id']!r}")
        overrides, actor = [*kept, new], args.actor
    else:
        if not any(o["id"] == args.override_id for o in kept):
            raise Problem(f"user {args.user} has no override {args.override_id!r} in force")
        overrides, actor = [o for o in kept if o["id"] != args.override_id], args.actor
    record = _record(args.user, overrides, at, actor)
    partition, offset = _run(settings, _write(settings, record))
    verb = "added" if args.action == "add" else "removed"
    which = new["id"] if args.action == "add" else args.override_id
    print(
        f"{verb} {which} for {args.user}: {len(record.overrides)} overrides now "
        f"(partition {partition}, offset {offset})"
    )
    return 0


def _override(args: argparse.Namespace, at: datetime) -> dict[str, Any]:
    """The new override as JSON, checked against the contract before anything is read."""
    body: dict[str, Any] = {
        "id": args.override_id or f"{args.kind}-{secrets.token_hex(4)}",
        "kind": args.kind,
        "actor": args.actor,
        "reason": args.reason,
        "note": args.note,
        "created_at": _text(at),
    }
    if args.rule is not None:
        body["rule"] = args.rule
    if args.until is not None:
        body["expires_at"] = _text(args.until)
    try:
        Override.model_validate(body)
    except ValidationError as exc:
        raise Problem(f"invalid override: {describe(exc, skip=0)}") from exc
    return body


def _record(user: str, overrides: list[dict[str, Any]], at: datetime, actor: str) -> OverrideRecord:
    try:
        return OverrideRecord.model_validate(
            {"user_id": user, "overrides": overrides, "changed_at": _text(at), "changed_by": actor}
        )
    except ValidationError as exc:
        raise Problem(f"invalid override: {describe(exc, skip=0)}") from exc


def _still_in_force(record: OverrideRecord, at: datetime) -> list[dict[str, Any]]:
    """The record's overrides that have not expired by ``at``, as JSON objects."""
    return [
        o.model_dump(mode="json", exclude_none=True)
        for o in record.overrides
        if o.expires_at is None or o.expires_at > at
    ]


def _list(user: str, current: OverrideRecord | None) -> int:
    if current is None or not current.overrides:
        print(f"{user}: no overrides")
        return 0
    print(f"{user}: changed at {_text(current.changed_at)} by {current.changed_by}")
    now = datetime.now(UTC)
    for o in current.overrides:
        until = "no expiry" if o.expires_at is None else f"until {_text(o.expires_at)}"
        ended = " (expired)" if o.expires_at is not None and o.expires_at <= now else ""
        rule = f" {o.rule}" if o.rule else (" every rule" if o.kind == "suppress" else "")
        print(
            f"  {o.id}: {o.kind}{rule} from {_text(o.created_at)} {until}{ended}, by {o.actor}: "
            f"{o.reason}" + (f" (note: {o.note})" if o.note else "")
        )
    return 0


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def _read(settings: Settings, user: str) -> OverrideRecord | None:
    from workers.stream.overrides_topic import read_current

    return await read_current(settings, user)


async def _write(settings: Settings, record: OverrideRecord) -> tuple[int, int]:
    from workers.stream.overrides_topic import write

    return await write(settings, record)


def _run(settings: Settings, work: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(work)
    except Exception as exc:
        if isinstance(exc, LineguardError):
            raise
        raise LineguardError(
            f"cannot reach {settings.topics.overrides} on {', '.join(settings.brokers)}: {exc}"
        ) from exc
