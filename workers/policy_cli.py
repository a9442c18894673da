"""``lineguard policy``: validate, compare, publish and show policies.

- ``validate FILE``: the policy's version and ``ok``, or what is wrong (exit 2).
- ``diff A B``: what changes from A to B, setting by setting, grouped by rule; a FILE or
  ``live`` / ``challenger`` (the policy published under that role).
- ``publish FILE --as live|challenger``: validates, refuses a version already published
  with other content, then writes it to the policies topic; every worker switches to a new
  live policy between batches.
- ``withdraw challenger``: stop the challenger (a tombstone under its key); workers stop
  running it between batches. The live policy cannot be withdrawn, only replaced.
- ``show``: what is published now under each role, by whom and when.

Brokers and security come from the ``LINEGUARD_*`` settings, as for the worker.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from datetime import UTC, datetime
from pathlib import Path

from workers.core.policy import Policy, load_policy
from workers.errors import LineguardError
from workers.policies import History, diff, make_record, sha256_of
from workers.problems import Problem
from workers.settings import Settings

ROLES = ("live", "challenger")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--brokers", default=None, help="bootstrap servers, comma separated")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    validate = actions.add_parser("validate", help="check a policy file")
    validate.add_argument("file", type=Path, metavar="FILE")
    compare = actions.add_parser("diff", help="what changes from policy A to policy B")
    compare.add_argument("old", metavar="A", help="a policy file, or live / challenger")
    compare.add_argument("new", metavar="B", help="a policy file, or live / challenger")
    publish = actions.add_parser("publish", help="publish a policy file as live or challenger")
    publish.add_argument("file", type=Path, metavar="FILE")
    publish.add_argument("--as", dest="role", choices=ROLES, required=True)
    publish.add_argument("--by", default=None, help="who publishes (default: the login name)")
    publish.add_argument("--note", default="", help="why (kept with the record)")
    withdraw = actions.add_parser("withdraw", help="stop running the challenger policy")
    withdraw.add_argument("role", choices=("challenger",), metavar="challenger")
    actions.add_parser("show", help="the policies published now")


def run(args: argparse.Namespace) -> int:
    if args.action == "validate":
        policy = load_policy(args.file)
        print(f"ok: {args.file} is policy version {policy.version}")
        return 0
    settings = _settings(args)
    if args.action == "diff":
        history = _history(settings) if {args.old, args.new} & set(ROLES) else History()
        old, new = _resolve(args.old, history), _resolve(args.new, history)
        lines = diff(old, new)
        print(f"{old.version} -> {new.version}: {len(lines)} settings change")
        for line in lines:
            print(f"  {line}")
        return 0
    if args.action == "publish":
        return _publish(settings, args)
    if args.action == "withdraw":
        return _withdraw(settings)
    return _show(_history(settings))


def _settings(args: argparse.Namespace) -> Settings:
    return Settings(brokers=args.brokers) if args.brokers else Settings()


def _history(settings: Settings) -> History:
    from workers.stream.policy_feed import read_history

    try:
        return asyncio.run(read_history(settings))
    except Exception as exc:
        if isinstance(exc, LineguardError):
            raise
        raise LineguardError(
            f"cannot read {settings.topics.policies} from {', '.join(settings.brokers)}: {exc}"
        ) from exc


def _resolve(name: str, history: History) -> Policy:
    if name in ROLES:
        adopted = history.current.get(name)
        if adopted is None:
            raise Problem(f"no {name} policy has been published")
        return adopted.policy
    return load_policy(name)


def _publish(settings: Settings, args: argparse.Namespace) -> int:
    try:
        text = args.file.read_text(encoding="utf-8")
    except OSError as exc:
        raise Problem(f"cannot read policy file {args.file}: {exc.strerror or exc}") from exc
    record, policy = make_record(
        text,
        args.role,
        args.by or getpass.getuser(),
        datetime.now(UTC),
        args.note,
        str(args.file),
    )
    history = _history(settings)
    known = history.versions.get(policy.version)
    if known is not None and known != sha256_of(text):
        raise Problem(
            f"version {policy.version!r} was already published with other content: "
            "give the changed policy a new version"
        )
    current = history.current.get(args.role)
    if current is not None and current.record.sha256 == record.sha256:
        print(f"unchanged: {args.role} is already {policy.version}")
        return 0
    from workers.stream.policy_feed import publish

    offset = asyncio.run(publish(settings, record))
    was = "nothing" if current is None else current.policy.version
    print(f"published {policy.version} as {args.role} (was {was}) at offset {offset}")
    return 0


def _withdraw(settings: Settings) -> int:
    current = _history(settings).current.get("challenger")
    if current is None:
        print("unchanged: no challenger is published")
        return 0
    from workers.stream.policy_feed import withdraw

    offset = asyncio.run(withdraw(settings, "challenger"))
    print(f"withdrew challenger {current.policy.version} at offset {offset}")
    return 0


def _show(history: History) -> int:
    if not history.current:
        print("no policy published: workers run their policy file")
    for role in ROLES:
        adopted = history.current.get(role)
        if adopted is None:
            continue
        record = adopted.record
        print(
            f"{role}: {record.version} published by {record.published_by} at "
            f"{record.published_at.isoformat()} (offset {adopted.offset})"
            + (f": {record.note}" if record.note else "")
        )
    for offset, why in history.refused:
        print(f"refused record at offset {offset}: {why}", file=sys.stderr)
    return 0
