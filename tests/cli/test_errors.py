"""Every command's mistakes are one line and exit 2; Ctrl-C and a closed pipe are quiet;
replay says where rejected lines went; evaluate warns about labels of another population.
Each runs ``lineguard`` as a subprocess and checks the exit code and what it says."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

COMMAND = [sys.executable, "-m", "workers.cli"]
LOGIN = (
    '{{"event_id": "e{n}", "type": "login", "user_id": "u{user}", "device_id": "d{n}", '
    '"occurred_at": "2026-03-01T00:{minute:02d}:00Z"}}\n'
)

LABEL = '{{"user_id": "{user}", "archetype": "ordinary", "expected_reason": null}}\n'


def events(count: int, users: int = 1) -> str:
    """Logins, each from a new device: every user with four or more is closed."""
    return "".join(LOGIN.format(n=n, minute=n % 60, user=n % users) for n in range(count))


def lineguard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        check=False,
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "events.jsonl").write_text(events(5) + "{not json\n")
    (tmp_path / "a-file").write_text("")
    (tmp_path / "labels.jsonl").write_text(LABEL.format(user="u0"))
    (tmp_path / "bad.toml").write_text("[cash_out]\nmin_outflow_ratio = 8\n")
    return tmp_path


EVALUATE = ["evaluate", "--events", "events.jsonl", "--labels", "labels.jsonl", "--until",
            "2026-03-02T00:00:00Z"]  # fmt: skip
MISTAKES = {
    "live-users-zero": (
        ["replay", "events.jsonl", "--live-users", "0"],
        "argument --live-users: must be at least 1, got 0",
    ),
    "report-is-a-file": (
        [*EVALUATE, "--report", "a-file"],
        "--report a-file: is a file; give a directory for the report",
    ),
    "policy-ratio-above-one": (
        ["replay", "events.jsonl", "--policy", "bad.toml"],
        "bad.toml: invalid policy: cash_out.min_outflow_ratio: should be less than or equal to 1",
    ),
    "evaluate-missing-events": (
        [*EVALUATE[:2], "nowhere.jsonl", *EVALUATE[3:], "--report", "r"],
        "cannot read nowhere.jsonl: no such file",
    ),
    "unknown-option": (["replay", "events.jsonl", "--untill", "x"], "unrecognized arguments"),
    "no-command": ([], "the following arguments are required: COMMAND"),
    "simulate-no-output": (["simulate", "--users", "5"], "give --out, --labels and/or"),
    "simulate-zero-users": (["simulate", "--users", "0", "--labels", "l.jsonl"], "--users: "),
}


@pytest.mark.parametrize(("argv", "message"), MISTAKES.values(), ids=MISTAKES.keys())
def test_a_mistake_is_one_line_and_exit_2(workdir: Path, argv: list[str], message: str) -> None:
    done = lineguard(*argv, cwd=workdir)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("lineguard: error: ")
    assert message in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_replay_says_how_to_keep_rejected_lines(workdir: Path) -> None:
    done = lineguard("replay", "events.jsonl", cwd=workdir)
    assert done.returncode == 0
    assert done.stderr.rstrip().endswith("; 1 rejected lines not kept: pass --rejects FILE")
    kept = lineguard("replay", "events.jsonl", "--rejects", "rejects.jsonl", cwd=workdir)
    assert "not kept" not in kept.stderr


def test_evaluate_warns_when_no_labelled_user_is_in_the_events(workdir: Path) -> None:
    (workdir / "other.jsonl").write_text(LABEL.format(user="x9"))
    argv = [*EVALUATE, "--report", "r"]
    done = lineguard(*argv[:4], "other.jsonl", *argv[5:], cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "warning: none of the 1 labelled users appears in the events" in done.stderr
    same = lineguard(*argv, cwd=workdir)
    assert same.returncode == 0, same.stderr
    assert "warning" not in same.stderr


def test_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    (tmp_path / "many.jsonl").write_text(events(20_000, users=2_000))
    replay = subprocess.Popen(
        [*COMMAND, "replay", "many.jsonl", "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )
    assert replay.stdout is not None and replay.stderr is not None
    replay.stdout.readline()
    replay.stdout.close()  # what `| head -1` does
    assert replay.wait(timeout=60) == 141
    assert replay.stderr.read() == b""


def test_ctrl_c_is_quiet(tmp_path: Path) -> None:
    replay = subprocess.Popen(
        [*COMMAND, "replay", "-", "--no-progress"],
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert replay.stdin is not None and replay.stderr is not None
    replay.stdin.write(events(3).encode())
    replay.stdin.flush()
    time.sleep(2)  # waiting on standard input, well past start-up
    replay.send_signal(signal.SIGINT)
    assert replay.wait(timeout=60) == 130
    assert b"Traceback" not in replay.stderr.read()
    replay.stdin.close()


def _stderr_on_a_terminal(tmp_path: Path, *args: str) -> str:
    """Run replay with stderr on a pseudo-terminal; what was written there."""
    primary, secondary = pty.openpty()
    replay = subprocess.Popen(
        [*COMMAND, "replay", "events.jsonl", *args],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
    )
    os.close(secondary)
    written = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        written += chunk
    os.close(primary)
    assert replay.wait(timeout=60) == 0
    return written.decode(errors="replace")


def test_progress_on_a_terminal_none_when_piped_or_refused(workdir: Path) -> None:
    shown = _stderr_on_a_terminal(workdir)
    assert "replay" in shown and "events" in shown and "\x1b[" in shown  # the bar, drawn
    assert "replayed 6 lines" in shown  # the summary, as before
    hidden = _stderr_on_a_terminal(workdir, "--no-progress")
    assert "\x1b[" not in hidden
    assert hidden.startswith("replayed 6 lines")
    piped = lineguard("replay", "events.jsonl", cwd=workdir)
    assert piped.stderr.startswith("replayed 6 lines") and "\x1b[" not in piped.stderr
    forced = lineguard("replay", "events.jsonl", "--progress", cwd=workdir)
    assert "\x1b[" in forced.stderr


def test_version_and_help(workdir: Path) -> None:
    done = lineguard("--version", cwd=workdir)
    assert done.returncode == 0 and done.stdout.startswith("lineguard ")
    assert json.dumps("``") not in lineguard("--help", cwd=workdir).stdout
