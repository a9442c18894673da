"""Whether the workers of one group run the same live policy.

Every worker publishes the versions it runs in its ``/readyz`` body. Each worker asks the
other members of its group (their status URLs come with every assignment) at most every
few seconds, and remembers since when some answered another live version; past
``LINEGUARD_POLICY_DISAGREEMENT_SECONDS`` its ``/readyz`` fails with the versions and who
runs them. A member that does not answer counts as neither agreeing nor disagreeing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

log = logging.getLogger(__name__)

_ASK_TIMEOUT_SECONDS = 2.0
_ASK_EVERY_SECONDS = 5.0


class GroupPolicies:
    """The live policy versions the other members of the group said they run."""

    def __init__(self, limit_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit_seconds
        self.clock = clock
        self.others: dict[str, str] = {}
        """Member URL -> the live version it said it runs (the last that answered)."""
        self.since: float | None = None
        """When the current disagreement was first seen (None: none)."""
        self._next_ask = 0.0

    def due(self) -> bool:
        """Time to ask the others again (never when the check is off)."""
        return self.limit > 0 and self.clock() >= self._next_ask

    async def ask(self, mine: str, urls: Iterable[str]) -> None:
        """Ask each of ``urls`` (this worker's excluded) for its live version."""
        self._next_ask = self.clock() + min(_ASK_EVERY_SECONDS, max(0.5, self.limit / 2))
        targets = sorted(set(urls))
        answers = await asyncio.gather(*(_live_version(url) for url in targets))
        self.record(mine, {url: v for url, v in zip(targets, answers, strict=True) if v})

    def record(self, mine: str, answers: dict[str, str]) -> None:
        """Take the versions the others answered (members that did not answer are left out)."""
        self.others = answers
        differing = any(version != mine for version in answers.values())
        if not differing:
            self.since = None
        elif self.since is None:
            self.since = self.clock()
            log.warning(
                "the workers of this group run different live policies",
                extra={"here": mine, "others": answers},
            )

    def reason(self, mine: str) -> str | None:
        """Why ``/readyz`` fails, or None: a disagreement older than the limit."""
        if self.since is None or self.clock() - self.since < self.limit:
            return None
        others = ", ".join(f"{v} at {url}" for url, v in sorted(self.others.items()) if v != mine)
        return (
            f"the workers of this group have run different live policies for over "
            f"{self.limit:g} s: {mine} here, {others}"
        )


async def _live_version(url: str) -> str | None:
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=_ASK_TIMEOUT_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(f"{url.rstrip('/')}/readyz", allow_redirects=False) as response,
        ):
            body: Any = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    policy = body.get("policy") if isinstance(body, dict) else None
    live = policy.get("live") if isinstance(policy, dict) else None
    return live if isinstance(live, str) else None
