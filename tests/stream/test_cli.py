"""``lineguard worker`` refuses to start, clearly and with a non-zero exit, when it cannot work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from workers.broker import free_port
from workers.settings import Settings

REPO = Path(__file__).resolve().parents[2]


def worker(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", "worker", *args],
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
    assert result.stderr.startswith("lineguard: error: LINEGUARD_CLOCK: ")
    assert "'wall' or 'event'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_misspelt_choice_names_the_option_and_its_choices(tmp_path: Path) -> None:
    result = worker(tmp_path, "--clock", "evnt")
    assert result.returncode == 2
    assert result.stderr.startswith("lineguard: error: argument --clock: invalid choice: 'evnt'")
    assert "'wall', 'event'" in result.stderr
    assert result.stderr.count("\n") == 1


def test_help_lists_every_setting_with_its_default() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "workers.cli", "worker", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    epilog = help_text[help_text.index("environment settings") :]
    for name, info in Settings.model_fields.items():
        assert info.description, f"Settings.{name} needs a description for the help"
        assert f"LINEGUARD_{name.upper()}" in epilog
    assert "LINEGUARD_PARTITIONS=6\n" in epilog
    assert "LINEGUARD_TOPICS__DECISIONS=lineguard.decisions" in epilog
    assert "(default wall; env LINEGUARD_CLOCK)" in help_text
