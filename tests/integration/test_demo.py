"""``lineguard demo`` runs non-interactively, finishes by itself and summarises what it saw."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest

from tests.integration.harness import REPO

pytestmark = pytest.mark.integration


def test_the_demo_streams_a_population_and_prints_a_summary() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "demo", "--users", "300", "--rate", "50000"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "summary" in out
    assert "/metrics" in out
    assert re.search(
        r"curl -H 'Authorization: Bearer [A-Za-z0-9_-]{16,}' http://127\.0\.0\.1:\d+/users/\S+",
        out,
    )
    assert "close_line" in out and "CLOSE" in out
    assert "dead letters not_json" in out
    sent = next(line for line in out.splitlines() if "records sent" in line).split()[-1]
    done = next(line for line in out.splitlines() if "records processed" in line).split()[-1]
    assert sent == done


def test_the_demo_runs_over_tls() -> None:
    if shutil.which("openssl") is None:
        pytest.skip("lineguard demo --tls makes its certificates with openssl, not found")
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "demo", "--users", "200", "--rate", "50000", "--tls"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(TLS)" in result.stdout
    assert "close_line" in result.stdout
