"""Published policies: the records of ``lineguard.policies``, what changed between two
policies, and the history a worker or ``lineguard policy`` folds from the topic.

A record carries the policy's TOML text exactly as it was validated; every reader validates
it again (a record that fails is refused, never applied). A version names one content: a
second record with the same version and other text is refused by ``publish`` and ignored
by readers.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.control import PolicyRecord
from schemas.outputs import PolicyRole
from workers.core.policy import Policy, parse_policy
from workers.errors import PolicyError

log = logging.getLogger(__name__)


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_record(
    text: str, role: PolicyRole, by: str, at: datetime, note: str = "", source: str = "<policy>"
) -> tuple[PolicyRecord, Policy]:
    """Validate ``text`` and wrap it as a record (raises ``PolicyError`` when invalid)."""
    policy = parse_policy(text, source)
    record = PolicyRecord(
        role=role,
        version=policy.version,
        policy_toml=text,
        sha256=sha256_of(text),
        published_by=by,
        published_at=at,
        note=note,
    )
    return record, policy


def diff(old: Policy, new: Policy) -> list[str]:
    """What changes from ``old`` to ``new``, one line per setting, grouped by section (rule)."""
    before, after = _flat(old.model_dump(mode="json")), _flat(new.model_dump(mode="json"))
    lines = []
    for key in sorted(set(before) | set(after), key=_section_order(old)):
        if before.get(key) != after.get(key):
            lines.append(f"{key}: {_show(before.get(key))} -> {_show(after.get(key))}")
    return lines


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        for key, item in value.items():
            result.update(_flat(item, f"{prefix}.{key}" if prefix else key))
        return result
    return {prefix: value}


def _section_order(policy: Policy) -> Any:
    sections = list(type(policy).model_fields)

    def order(key: str) -> tuple[int, str]:
        head = key.split(".", 1)[0]
        return (sections.index(head) if head in sections else len(sections), key)

    return order


def _show(value: Any) -> str:
    return "(absent)" if value is None else repr(value)


@dataclass
class Adopted:
    """A record that validated: its policy, and where it was read."""

    record: PolicyRecord
    policy: Policy
    offset: int


@dataclass
class Withdrawn:
    """A tombstone for the challenger: from here on, no challenger runs."""

    role: str
    offset: int


@dataclass
class History:
    """The fold of the policies topic: the current record per role, every version's
    content, and the records refused (with why)."""

    current: dict[str, Adopted] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    """version -> sha256 of the first content published under it."""
    refused: list[tuple[int, str]] = field(default_factory=list)

    def add(self, offset: int, key: bytes | None, value: bytes | None) -> Adopted | Withdrawn | str:
        """Fold one record in; returns what was adopted (or withdrawn) or why it was refused."""
        if value is None and key == b"challenger":
            self.current.pop("challenger", None)
            return Withdrawn("challenger", offset)
        why = self._check(offset, key, value)
        if isinstance(why, str):
            self.refused.append((offset, why))
            return why
        self.current[why.record.role] = why
        self.versions.setdefault(why.record.version, why.record.sha256)
        return why

    def _check(self, offset: int, key: bytes | None, value: bytes | None) -> Adopted | str:
        if value is None:
            return "a deletion (tombstone) of the live policy: the last one stays (publish another)"
        try:
            record = PolicyRecord.model_validate_json(value)
        except ValidationError as exc:
            return f"not a policy record: {exc.errors()[0]['msg']}"
        if key is not None and key.decode(errors="replace") != record.role:
            return f"key {key!r} is not the record's role {record.role!r}"
        if sha256_of(record.policy_toml) != record.sha256:
            return "sha256 does not match the policy text"
        try:
            policy = parse_policy(record.policy_toml, f"policy record at offset {offset}")
        except PolicyError as exc:
            return str(exc)
        if policy.version != record.version:
            return f"the record says version {record.version!r}, its text {policy.version!r}"
        known = self.versions.get(record.version)
        if known is not None and known != record.sha256:
            return f"version {record.version!r} was already published with other content"
        return Adopted(record, policy, offset)
