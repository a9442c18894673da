"""``lineguard worker`` refuses to start, clearly and with a non-zero exit, when it cannot work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workers.broker import free_port

REPO = Path(__file__).resolve().parents[2]


def worker(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "worker"],
        cwd=REPO,
        env={**os.environ, "LINEGUARD_DATA_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_an_unreachable_broker_is_a_clear_error(tmp_path: Path) -> None:
    result = worker(tmp_path, LINEGUARD_BROKERS=f"127.0.0.1:{free_port()}")
    assert result.returncode == 3
    assert "cannot reach the Kafka brokers" in result.stderr


def test_an_invalid_policy_is_a_clear_error(tmp_path: Path) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('version = "broken"\n[low_credit_score]\nmin_score = "six hundred"\n')
    result = worker(tmp_path, LINEGUARD_POLICY_FILE=str(policy))
    assert result.returncode == 2
    assert "invalid policy" in result.stderr
    assert "min_score" in result.stderr


def test_invalid_settings_are_a_clear_error(tmp_path: Path) -> None:
    result = worker(tmp_path, LINEGUARD_CLOCK="sundial")
    assert result.returncode == 2
    assert "clock" in result.stderr
