"""``lineguard override``: an override the contract refuses is one line and exit 2, before
any broker is contacted (the brokers named here do not exist)."""

from __future__ import annotations

import subprocess
import sys

import pytest

NOWHERE = "127.0.0.1:9"  # the discard port: nothing answers Kafka there


def override(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "override", "--brokers", NOWHERE, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


ADD = ["add", "u1", "--actor", "ana", "--reason", "appeal 4411"]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--kind", "suppress"], "needs expires_at"),
        (["--kind", "watch", "--rule", "CASH_OUT", "--until", "2026-03-20T00:00:00Z"], "only"),
        (["--kind", "force_close"], "needs a note"),
        (
            [
                "--kind",
                "suppress",
                "--until",
                "2026-03-20T00:00:00Z",
                "--at",
                "2026-03-21T00:00:00Z",
            ],
            "expires_at must be after created_at",
        ),
        (["--kind", "suppress", "--rule", "MANUAL_REVIEW", "--until", "2026-03-20T00:00:00Z"], ""),
        (["--kind", "suppress", "--until", "the 20th"], "RFC 3339"),
        (["--kind", "suppress", "--until", "2026-03-20T00:00:00Z", "--id", "no spaces"], "id"),
    ],
)
def test_a_refused_override_is_one_line_and_exit_2(args: list[str], said: str) -> None:
    result = override(*ADD, *args)
    assert result.returncode == 2, result.stderr
    assert said in result.stderr
    assert "Traceback" not in result.stderr
