"""The policy: every rule's threshold and action, validated from one TOML file."""

from __future__ import annotations

import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from schemas.outputs import REASON_CODES
from workers.errors import PolicyError

Action = Literal["close_line", "flag", "off"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RuleConfig(_Frozen):
    action: Action = "close_line"


class SeriousOverdue(RuleConfig):
    days: int = Field(30, ge=1, le=365)
    flag_milestones: tuple[int, ...] = (1, 7, 15, 30)

    @field_validator("flag_milestones")
    @classmethod
    def _sorted_positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(day < 1 for day in value) or list(value) != sorted(set(value)):
            raise ValueError("flag_milestones must be increasing positive day counts")
        return value


class CashOut(RuleConfig):
    window_hours: float = Field(24, gt=0, le=24 * 30)
    card_bound_within_days: float = Field(7, gt=0, le=365)
    min_outflow_ratio: float = Field(0.8, gt=0, le=1)


class ScoreSwiping(RuleConfig):
    quick_cycle_hours: float = Field(48, gt=0, le=24 * 60)
    window_days: float = Field(30, gt=0, le=365)
    min_quick_cycles: int = Field(3, ge=1, le=1000)


class FrequentEarlyRepayment(RuleConfig):
    min_hours_after_drawdown: float = Field(48, ge=0, le=24 * 365)
    window_days: float = Field(90, gt=0, le=365)
    min_early_settlements: int = Field(4, ge=1, le=1000)


class DeviceWindow(_Frozen):
    hours: float = Field(gt=0, le=24 * 90)
    min_distinct_devices: int = Field(ge=2, le=64)


class DeviceSwitching(RuleConfig):
    windows: tuple[DeviceWindow, ...] = (
        DeviceWindow(hours=24, min_distinct_devices=4),
        DeviceWindow(hours=168, min_distinct_devices=6),
    )

    @field_validator("windows")
    @classmethod
    def _at_least_one(cls, value: tuple[DeviceWindow, ...]) -> tuple[DeviceWindow, ...]:
        if not value:
            raise ValueError("device_switching needs at least one window")
        return value


class AccountInfoChurn(RuleConfig):
    window_days: float = Field(30, gt=0, le=365)
    min_changes: int = Field(4, ge=1, le=1000)
    profile_fields: tuple[Literal["phone", "identity", "occupation", "address"], ...] = (
        "phone",
        "identity",
    )


class Inactivity(RuleConfig):
    days: float = Field(90, gt=0, le=3650)


class LowCreditScore(RuleConfig):
    min_score: int = Field(600, ge=350, le=950)


class Restore(_Frozen):
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


class Time(_Frozen):
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


class Memory(_Frozen):
    dedupe_days: float = Field(30, ge=1, le=3650)
    dedupe_max_ids: int = Field(1000, ge=16, le=100_000)


class Policy(_Frozen):
    """All thresholds of the policy; the defaults are the product's default policy."""

    version: str = Field("default-2026.12", min_length=1, max_length=64)
    serious_overdue: SeriousOverdue = SeriousOverdue()
    cash_out: CashOut = CashOut()
    score_swiping: ScoreSwiping = ScoreSwiping()
    frequent_early_repayment: FrequentEarlyRepayment = FrequentEarlyRepayment()
    device_switching: DeviceSwitching = DeviceSwitching()
    account_info_churn: AccountInfoChurn = AccountInfoChurn()
    inactivity: Inactivity = Inactivity()
    low_credit_score: LowCreditScore = LowCreditScore()
    restore: Restore = Restore()
    time: Time = Time()
    memory: Memory = Memory()

    def rule(self, code: str) -> RuleConfig:
        """The rule behind a reason code."""
        rule: RuleConfig = getattr(self, RULE_SECTIONS[code])
        return rule

    def action(self, code: str) -> Action:
        """The configured action of the rule behind a reason code."""
        return self.rule(code).action


RULE_SECTIONS: dict[str, str] = {code: code.lower() for code in REASON_CODES}
"""Reason code -> the policy section of its rule: the code in lower case."""

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
