"""DEVICE_SWITCHING: enough distinct devices used within any of the policy's windows."""

from __future__ import annotations

from bisect import insort
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from workers.core.rules.base import Rule, RuleConfig, Section, Truth, raise_windowed, window_text
from workers.core.state import MAX_DEVICES, MAX_USES_PER_DEVICE
from workers.core.timeutil import hours

if TYPE_CHECKING:
    from schemas.events import Event
    from workers.core.compiled import Compiled
    from workers.core.lifecycle import Step
    from workers.core.state import UserState

CODE = "DEVICE_SWITCHING"


class DeviceWindow(Section):
    hours: float = Field(gt=0, le=24 * 90)
    min_distinct_devices: int = Field(ge=2, le=64)


class DeviceSwitchingConfig(RuleConfig):
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


@dataclass(frozen=True, slots=True)
class Params:
    windows: tuple[tuple[int, int], ...]
    """(window, distinct devices) pairs."""
    keep: int
    """The longest window: uses older than it are forgotten."""
    min_window: int
    min_threshold: int


class DeviceSwitching(Rule[DeviceSwitchingConfig, Params]):
    code = CODE
    config_model = DeviceSwitchingConfig
    describes = "frequent device changes"
    close_text = (
        "Your account was used on many different devices in a short time, so your credit "
        "line has been closed to protect you."
    )
    standing = True
    events = frozenset({"login", "device_change"})
    facts = ("devices",)

    def compile(self, config: DeviceSwitchingConfig) -> Params:
        windows = tuple((hours(w.hours), w.min_distinct_devices) for w in config.windows)
        return Params(
            windows=windows,
            keep=max(w for w, _ in windows),
            min_window=min(w for w, _ in windows),
            min_threshold=min(n for _, n in windows),
        )

    def retain(self, params: list[Params]) -> Params:
        return Params(
            windows=(),
            keep=max(p.keep for p in params),
            min_window=min(p.min_window for p in params),
            min_threshold=0,
        )

    def on_event(self, step: Step, event: Event) -> None:
        if event.type == "device_change" or (event.type == "login" and event.success):
            state, at = step.state, step.at
            params: Params = step.rules.params[CODE]
            if len(state.devices) < params.min_threshold:
                return  # too few devices for any window to reach its threshold
            last_at = state.last_at if state.last_at is not None else at
            later = (
                [t for times in state.devices.values() for t in times if at < t <= at + params.keep]
                if at < last_at
                else []
            )
            raise_windowed(step, CODE, self.truth_at, later)

    def observe(self, step: Step, event: Event) -> None:
        """A successful login or a device change uses the event's device (no further call:
        this runs for about half the events)."""
        if event.type == "login":
            if not event.success:
                return
        elif event.type != "device_change":
            return
        device_id = event.device_id
        state, at = step.state, step.at
        params: Params = step.rules.params[CODE]
        last_at = state.last_at if state.last_at is not None else at
        horizon = last_at - params.keep
        previous = state.devices.get(device_id)
        if previous is None:
            uses = state.devices[device_id] = [at]
        elif at >= previous[-1]:  # the usual case, in time order: no copy, no search
            uses = [*previous, at]
        else:
            uses = previous.copy()  # never changed in place
            insort(uses, at)
        kept = [t for t in uses if t >= horizon] if uses[0] < horizon else uses
        # A use between two others of the same device no further apart than the shortest
        # window can never change a distinct-device count: any window holding it holds one
        # of them.
        index = 1
        while index < len(kept) - 1:
            if kept[index + 1] - kept[index - 1] <= params.min_window:
                del kept[index]
            else:
                index += 1
        if kept:
            if len(kept) > MAX_USES_PER_DEVICE:
                step.dropped("device_uses", len(kept) - MAX_USES_PER_DEVICE)
            state.devices[device_id] = kept[-MAX_USES_PER_DEVICE:]
        else:
            del state.devices[device_id]  # a use older than every window still kept
        if len(state.devices) > 1:
            for device in [d for d, times in state.devices.items() if times[-1] < horizon]:
                del state.devices[device]
        if len(state.devices) > MAX_DEVICES:
            by_recency = sorted(state.devices, key=lambda d: state.devices[d][-1])
            step.dropped("devices", len(state.devices) - MAX_DEVICES)
            for device in by_recency[: len(state.devices) - MAX_DEVICES]:
                del state.devices[device]

    def truth_at(self, state: UserState, rules: Compiled, at: int) -> Truth | None:
        params: Params = rules.params[CODE]
        if len(state.devices) < params.min_threshold:
            return None
        best: Truth | None = None
        for window, threshold in params.windows:
            latest: list[tuple[int, str]] = []
            for device, uses in state.devices.items():
                in_window = [t for t in uses if at - window <= t <= at]
                if in_window:
                    latest.append((max(in_window), device))
            if len(latest) < threshold:
                continue
            latest.sort(reverse=True)
            until = latest[threshold - 1][0] + window
            if best is None or until > best.until:
                best = Truth(
                    until,
                    {
                        "window": window_text(window),
                        "distinct_devices": len(latest),
                        "threshold": threshold,
                        "devices": sorted(device for _, device in latest),
                    },
                )
        return best


RULE = DeviceSwitching()
