"""``lineguard replay`` as a subprocess on small JSON-lines files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from schemas.outputs import Decision, Flag, Rejection

from .scenario import DAY, HOUR, SECOND, at, rfc3339

COMMAND = (
    [shutil.which("lineguard") or ""]
    if shutil.which("lineguard")
    else [
        sys.executable,
        "-m",
        "workers.cli",
    ]
)

FIRST = at(0)
INACTIVITY_DEADLINE = FIRST + 90 * DAY  # u2's only event is at FIRST


def line(event_id: str, event_type: str, user: str, when: Any, **fields: Any) -> str:
    moment = when if isinstance(when, str) else rfc3339(when)
    body = {"event_id": event_id, "type": event_type, "user_id": user, "occurred_at": moment}
    return json.dumps({**body, **fields})


MAIN_FILE = [
    line("e1", "login", "u1", FIRST, device_id="a"),  # 1
    "",  # 2: blank
    "{this is not json",  # 3
    line("e2", "login", "u1", FIRST + HOUR, device_id="b"),  # 4
    line("e3", "login", "u1", "2026-03-02T11:00:00", device_id="x"),  # 5: naive timestamp
    line("e4", "device_change", "u1", FIRST + 2 * HOUR, device_id="c"),  # 6
    line("e5", "teleport", "u1", FIRST + 2 * HOUR),  # 7: unknown type
    line("e6", "login", "u1", FIRST + 3 * HOUR, device_id="d"),  # 8: fourth device: close
    "   ",  # 9: blank
    line("e7", "login", "u2", FIRST, device_id="z"),  # 10
    line("e8", "profile_change", "u1", FIRST + 4 * HOUR, field="credit_score"),  # 11
    line("e1", "login", "u1", FIRST, device_id="a"),  # 12: redelivered copy of line 1
]
SECOND_FILE = [
    "",  # 1
    line("f1", "profile_change", "u3", FIRST + 5 * HOUR, field="credit_score", credit_score=580),
    "[1, 2, 3]",  # 3
]
EXPECTED_REJECTS = [
    ("main.jsonl", 3, "not_json", ""),
    ("main.jsonl", 5, "invalid_contract", "occurred_at"),
    ("main.jsonl", 7, "unknown_type", "teleport"),
    ("main.jsonl", 11, "invalid_contract", "credit_score"),
    ("second.jsonl", 3, "invalid_contract", ""),
]


@dataclass
class Replay:
    returncode: int
    stdout: str
    stderr: str
    decisions: list[Decision]
    flags: list[Flag]
    rejects: list[Rejection]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def replay(workdir: Path, *args: str, files: list[Path] | None = None) -> Replay:
    flags_path, rejects_path = workdir / "flags.jsonl", workdir / "rejects.jsonl"
    for path in (flags_path, rejects_path):
        path.unlink(missing_ok=True)
    inputs = [str(p) for p in files] if files is not None else []
    argv = [*COMMAND, "replay", *inputs, "--flags", str(flags_path), "--rejects", str(rejects_path)]
    done = subprocess.run(
        [*argv, *args], capture_output=True, text=True, timeout=60, cwd=workdir, check=False
    )

    def read(path: Path) -> list[str]:
        return path.read_text().splitlines() if path.exists() else []

    return Replay(
        done.returncode,
        done.stdout,
        done.stderr,
        [Decision.model_validate_json(text) for text in done.stdout.splitlines()],
        [Flag.model_validate_json(text) for text in read(flags_path)],
        [Rejection.model_validate_json(text) for text in read(rejects_path)],
    )


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("replay")
    write(root / "main.jsonl", MAIN_FILE)
    write(root / "second.jsonl", SECOND_FILE)
    return root


@pytest.fixture(scope="module")
def main_run(workdir: Path) -> Replay:
    files = [workdir / "main.jsonl", workdir / "second.jsonl"]
    return replay(workdir, "--until", rfc3339(INACTIVITY_DEADLINE), files=files)


def test_exit_0_and_a_one_line_summary(main_run: Replay) -> None:
    assert main_run.returncode == 0, main_run.stderr
    summary = main_run.stderr.strip()
    assert summary
    assert "\n" not in summary


def test_decisions_on_stdout_in_the_order_made(main_run: Replay) -> None:
    made = [(d.user_id, d.decision, [r.code for r in d.reasons]) for d in main_run.decisions]
    assert made == [
        ("u1", "close_line", ["DEVICE_SWITCHING"]),
        ("u3", "close_line", ["LOW_CREDIT_SCORE"]),
        ("u2", "close_line", ["INACTIVITY"]),
    ]
    first, second, third = main_run.decisions
    assert (first.decided_at, first.trigger_event_id) == (FIRST + 3 * HOUR, "e6")
    assert (second.decided_at, second.trigger_event_id) == (FIRST + 5 * HOUR, "f1")
    # --until is inclusive: the deadline at exactly --until fires, at the deadline.
    assert (third.decided_at, third.trigger_event_id) == (INACTIVITY_DEADLINE, None)


def test_flags_file(main_run: Replay) -> None:
    assert [(f.user_id, f.signal) for f in main_run.flags] == [
        ("u1", "DEVICE_SWITCHING"),
        ("u3", "LOW_CREDIT_SCORE"),
        ("u2", "INACTIVITY"),
    ]


def test_rejects_file_names_file_line_and_reason(main_run: Replay) -> None:
    got = [(Path(r.file).name, r.line, r.error_kind) for r in main_run.rejects]
    assert got == [(name, number, kind) for name, number, kind, _ in EXPECTED_REJECTS]
    for rejection, (_, _, _, mention) in zip(main_run.rejects, EXPECTED_REJECTS, strict=True):
        assert rejection.reason.strip()
        assert mention in rejection.reason


def test_duplicate_line_counted_once(main_run: Replay) -> None:
    # The redelivered copy of line 1 changes nothing: one close for u1 only.
    assert [d.user_id for d in main_run.decisions].count("u1") == 1
    assert "1 duplicate" in main_run.stderr


def test_until_one_second_before_the_deadline(workdir: Path) -> None:
    until = rfc3339(INACTIVITY_DEADLINE - SECOND)
    done = replay(workdir, "--until", until, files=[workdir / "main.jsonl"])
    assert done.returncode == 0
    assert [d.user_id for d in done.decisions] == ["u1"]


def test_without_until_the_clock_stops_at_the_last_event(workdir: Path) -> None:
    done = replay(workdir, files=[workdir / "main.jsonl"])
    assert done.returncode == 0
    assert [d.user_id for d in done.decisions] == ["u1"]


def test_policy_file_changes_thresholds(workdir: Path) -> None:
    policy = workdir / "strict.toml"
    policy.write_text(
        'version = "test-5-devices"\n'
        "[device_switching]\n"
        "windows = [{ hours = 24, min_distinct_devices = 5 }]\n",
        encoding="utf-8",
    )
    done = replay(workdir, "--policy", str(policy), files=[workdir / "main.jsonl"])
    assert done.returncode == 0, done.stderr
    assert done.decisions == []
    assert all(f.policy_version == "test-5-devices" for f in done.flags)


BAD_RUNS = {
    "missing-file": (["--until", "2026-06-01T00:00:00Z"], "missing.jsonl", "missing.jsonl"),
    "directory-as-file": ([], ".", ""),
    "policy-not-toml": (["--policy", "broken.toml"], "main.jsonl", "broken.toml"),
    "policy-bad-threshold": (["--policy", "negative.toml"], "main.jsonl", "min_outflow_ratio"),
    "policy-unknown-key": (["--policy", "unknown.toml"], "main.jsonl", "cash_outt"),
    "policy-missing": (["--policy", "nowhere.toml"], "main.jsonl", "nowhere.toml"),
    "until-without-offset": (["--until", "2026-06-01T00:00:00"], "main.jsonl", "until"),
}


@pytest.mark.parametrize("args,file,mention", BAD_RUNS.values(), ids=BAD_RUNS.keys())
def test_non_zero_with_a_clear_message(
    workdir: Path, args: list[str], file: str, mention: str
) -> None:
    (workdir / "broken.toml").write_text("[cash_out\nmin_outflow_ratio = 0.8\n")
    (workdir / "negative.toml").write_text("[cash_out]\nmin_outflow_ratio = -1\n")
    (workdir / "unknown.toml").write_text("[cash_outt]\nmin_outflow_ratio = 0.8\n")
    done = replay(workdir, *args, files=[workdir / file])
    assert done.returncode != 0
    assert done.stdout == ""
    message = done.stderr.strip()
    assert message
    assert mention in message
    assert "Traceback" not in message
