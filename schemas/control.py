"""Control contracts: records that change how lineguard decides, not what users did.

``lineguard.policies`` is a compacted topic keyed by the policy's role (``live`` or
``challenger``); each value is a :class:`PolicyRecord`. Workers read it from the beginning
and switch to the newest valid ``live`` policy between batches.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

PolicyRole = Literal["live", "challenger"]


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
