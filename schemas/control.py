"""Control contracts: records that change how lineguard decides, not what users did.

``lineguard.policies`` is a compacted topic keyed by the policy's role (``live`` or
``challenger``); each value is a :class:`PolicyRecord`. Workers read it from the beginning
and switch to the newest valid ``live`` policy between batches.

``lineguard.overrides`` carries :class:`OverrideRecord` values: per-user overrides.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.events import Timestamp
from schemas.outputs import PolicyRole, RuleCode


class PolicyRecord(BaseModel):
    """One published policy: its TOML text exactly as validated, and who published it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    role: PolicyRole = Field(description="Which policy this record sets; also the record's key.")
    version: str = Field(
        min_length=1,
        max_length=64,
        description="The policy's own `version`; a version names one content, never two.",
    )
    policy_toml: str = Field(
        max_length=256 * 1024, description="The policy file's text, validated before publishing."
    )
    sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="SHA-256 of `policy_toml` (UTF-8), hex."
    )
    published_by: str = Field(min_length=1, max_length=256)
    published_at: AwareDatetime
    note: str = Field("", max_length=4096, description="Why it was published (free text).")


# Per-user overrides. ``lineguard.overrides`` is a compacted topic keyed by user id and
# co-partitioned with the input topics; each value is an :class:`OverrideRecord`, the user's
# full list of overrides after one change (a tombstone removes them all). Workers consume it
# beside the event topics and apply each change as a fact of the user's history, dated at
# ``changed_at``.

OverrideKind = Literal["suppress", "force_close", "watch"]

MAX_OVERRIDES = 32
"""Overrides one user may have at once (the state that keeps them is bounded)."""


class Override(BaseModel):
    """One override of one user's decisions, set by a person for a reason.

    - ``suppress``: ``rule`` (or every rule, when it is null) still raises flags but never
      closes the line until ``expires_at``;
    - ``force_close``: close the line now with reason ``MANUAL_REVIEW`` (``note`` goes into
      the evidence); while it lasts the line cannot become restore-eligible; it may have no
      ``expires_at`` (it then lasts until removed);
    - ``watch``: closures are held back as flags only, and the status API shows every rule's
      current evidence for the user, until ``expires_at``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="Names this override among the user's; named in the evidence it affects.",
    )
    kind: OverrideKind
    rule: RuleCode | None = Field(
        default=None,
        description="For suppress: the rule it holds back; null: every rule. Only for suppress.",
    )
    note: str = Field(
        "",
        max_length=4096,
        description="Free text; required for force_close (it goes into the closure's evidence).",
    )
    actor: str = Field(min_length=1, max_length=256, description="Who set it.")
    reason: str = Field(min_length=1, max_length=4096, description="Why (the appeal, the case).")
    created_at: Timestamp = Field(description="When it takes effect.")
    expires_at: Timestamp | None = Field(
        default=None,
        description="When it ends (exclusive). Required, except for force_close.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.rule is not None and self.kind != "suppress":
            raise ValueError(f"rule is only for suppress, not for {self.kind}")
        if str(self.rule) == "MANUAL_REVIEW":
            raise ValueError("MANUAL_REVIEW cannot be suppressed: remove the force_close instead")
        if self.kind == "force_close" and not self.note.strip():
            raise ValueError("a force_close needs a note (it goes into the closure's evidence)")
        if self.expires_at is None and self.kind != "force_close":
            raise ValueError(f"a {self.kind} needs expires_at")
        if self.expires_at is not None and self.expires_at <= self.created_at:
            raise ValueError("expires_at must be after created_at")
        return self


class OverrideRecord(BaseModel):
    """One user's full list of overrides after one change: a value of ``lineguard.overrides``
    (key: ``user_id``). An override missing from the list that the last record had is
    removed at ``changed_at``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    user_id: str = Field(min_length=1, max_length=64, description="Also the record's key.")
    overrides: list[Override] = Field(max_length=MAX_OVERRIDES)
    changed_at: Timestamp = Field(description="When this change was made: its time in the stream.")
    changed_by: str = Field(min_length=1, max_length=256, description="Who made this change.")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [override.id for override in self.overrides]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"override ids must be distinct: {repeated}")
        later = [o.id for o in self.overrides if o.created_at > self.changed_at]
        if later:
            raise ValueError(f"overrides created after changed_at: {later}")
        return self
