"""The policy: every rule's threshold and action, validated from one TOML file."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

from pydantic import Field, ValidationError, create_model, field_validator, model_validator
from pydantic_core import ErrorDetails

from schemas.outputs import REASON_CODES
from workers.core.rules import BY_CODE, RULES
from workers.core.rules.base import Action, RuleConfig, Section
from workers.errors import PolicyError

__all__ = ["Action", "Policy", "PolicyError", "RuleConfig", "load_policy", "parse_policy"]


class Restore(Section):
    cooling_days: float = Field(90, ge=0, le=3650)
    severe_cooling_days: float = Field(180, ge=0, le=3650)
    severe_reasons: tuple[str, ...] = ("CASH_OUT", "SCORE_SWIPING")
    recent_login_days: float = Field(30, gt=0, le=3650)
    min_credit_score: int = Field(600, ge=350, le=950)

    @model_validator(mode="after")
    def _severe_cools_longer(self) -> Restore:
        if self.severe_cooling_days < self.cooling_days:
            raise ValueError(
                f"severe_cooling_days ({self.severe_cooling_days:g}) must be at least "
                f"cooling_days ({self.cooling_days:g})"
            )
        return self

    @field_validator("severe_reasons")
    @classmethod
    def _known_codes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - set(REASON_CODES))
        if unknown:
            raise ValueError(f"unknown reason codes: {unknown}")
        return value


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_DURATION_UNITS = (86_400, 3_600, 60, 1)
MAX_GRACE_SECONDS = 7 * 86_400


def duration_seconds(text: str) -> int:
    """Seconds in a duration such as ``"15m"``, ``"1h30m"``, ``"90s"``, ``"2d"`` or ``"0"``."""
    text = text.strip()
    if text == "0":
        return 0
    match = _DURATION.fullmatch(text)
    if match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration like '15m', '1h30m', '90s', '2d' or '0'")
    return sum(
        int(part) * unit for part, unit in zip(match.groups(), _DURATION_UNITS, strict=True) if part
    )


class Time(Section):
    """How long a deadline waits for events dated before it (late payments, slow topics)."""

    grace: str = "15m"

    @field_validator("grace")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        seconds = duration_seconds(value)
        if seconds > MAX_GRACE_SECONDS:
            raise ValueError(f"grace must be at most 7d, got {value!r}")
        return value

    @property
    def grace_seconds(self) -> int:
        return duration_seconds(self.grace)


class Memory(Section):
    dedupe_days: float = Field(30, ge=1, le=3650)
    dedupe_max_ids: int = Field(1000, ge=16, le=100_000)


class _Versioned(Section):
    version: str = Field("default-2026.12", min_length=1, max_length=64)


if TYPE_CHECKING:
    _RuleSections: TypeAlias = _Versioned
else:
    _RuleSections = create_model(
        "_RuleSections",
        __base__=_Versioned,
        **{rule.section: (rule.config_model, rule.config_model()) for rule in RULES},
    )
    """One section per rule of the registry, named after its code in lower case."""


class Policy(_RuleSections):
    """All thresholds of the policy; the defaults are the product's default policy.

    Besides ``version`` and the sections below, one section per rule of the registry
    (``workers.core.rules``), named after its reason code in lower case (``cash_out``)."""

    restore: Restore = Restore()
    time: Time = Time()
    memory: Memory = Memory()

    def rule(self, code: str) -> RuleConfig:
        """The policy section of the rule behind a reason code."""
        rule: RuleConfig = getattr(self, BY_CODE[code].section)
        return rule

    def action(self, code: str) -> Action:
        """The configured action of the rule behind a reason code."""
        return self.rule(code).action


DEFAULT_POLICY_RESOURCE = "default.toml"


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """Validate a policy from TOML text; raises PolicyError naming what is wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from exc
    try:
        # Strict: a quoted number, a boolean or a fractional count is a mistake, not a value
        # to coerce. Validated as JSON so that TOML arrays fill the tuples.
        as_json = json.dumps(data, default=_not_json)
        return Policy.model_validate_json(as_json, strict=True)
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise PolicyError(f"{source}: invalid policy: {problems}") from exc


def _not_json(value: object) -> str:
    """TOML dates and times: no policy key takes one; a string is refused with its key."""
    return str(value)


_PLAIN_WORDS = {
    "extra_forbidden": "unknown key",
    "int_type": "should be a whole number",
    "model_type": "should be a table",
    "dict_type": "should be a table",
}


def _problem(error: ErrorDetails) -> str:
    """``cash_out.min_outflow_ratio: should be less than or equal to 1 (got 8)``."""
    path = ""
    for part in error["loc"]:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    kind = error["type"]
    message = _PLAIN_WORDS.get(kind) or error["msg"].removeprefix("Value error, ")
    message = message.replace("Input should", "should")
    got = error.get("input")
    quiet = kind in ("extra_forbidden", "value_error") or isinstance(got, dict | list)
    return f"{path or 'policy'}: {message}{'' if quiet else f' (got {got!r})'}"


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy in ``path``, or the packaged default policy when ``path`` is None."""
    if path is None:
        text = resources.files("workers.policy").joinpath(DEFAULT_POLICY_RESOURCE).read_text()
        return parse_policy(text, "default policy")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from exc
    return parse_policy(text, str(path))
