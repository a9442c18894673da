"""How long the user's facts are kept when several policies share them.

Facts are pruned by the windows of the policy that reads them: a device's uses older than
DEVICE_SWITCHING's longest window, outflows older than twice CASH_OUT's, remembered event
ids older than the dedupe window. Policies that share one user's facts (``decide_shared``)
need them kept for the longest window of any of them: ``retention`` is that policy, which
only the facts are recorded under (each rule's ``retain``, the dedupe window and size at
their largest). For one policy it is the policy itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from workers.core.compiled import Compiled
from workers.core.rules import RULES


def retention(policies: Sequence[Compiled]) -> Compiled:
    """The parameters that keep the facts every one of ``policies`` reads."""
    first = policies[0]
    if len(policies) == 1:
        return first
    return replace(
        first,
        params={
            rule.code: rule.retain([policy.params[rule.code] for policy in policies])
            for rule in RULES
        },
        dedupe_window=max(policy.dedupe_window for policy in policies),
        dedupe_max=max(policy.dedupe_max for policy in policies),
    )
