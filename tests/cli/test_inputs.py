"""``lineguard replay`` and ``evaluate`` read '-' as standard input and gzip transparently,
and refuse what is not a readable file with the reason (run as subprocesses)."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from workers.errors import InputError
from workers.inputs import Source, read_lines, source, sources, total_size

COMMAND = [sys.executable, "-m", "workers.cli"]
EVENTS = [
    {"event_id": f"e{n}", "type": "login", "user_id": "u1", "device_id": f"d{n}",
     "occurred_at": f"2026-03-01T0{n}:00:00Z"}
    for n in range(1, 6)
]  # fmt: skip
"""Five logins from five devices in five hours: one DEVICE_SWITCHING closure."""
TEXT = "".join(json.dumps(event) + "\n" for event in EVENTS)


def lineguard(
    *args: str, cwd: Path, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*COMMAND, *args, "--no-progress"]
        if args[0] in ("replay", "evaluate")
        else [*COMMAND, *args],
        cwd=cwd,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        timeout=60,
        check=False,
    )


def decisions(done: subprocess.CompletedProcess[bytes]) -> list[str]:
    assert done.returncode == 0, done.stderr.decode()
    return [json.loads(line)["user_id"] for line in done.stdout.splitlines()]


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text(TEXT)
    return path


def test_a_dash_reads_standard_input(tmp_path: Path, plain: Path) -> None:
    from_file = decisions(lineguard("replay", str(plain), cwd=tmp_path))
    assert from_file == ["u1"]
    assert decisions(lineguard("replay", "-", cwd=tmp_path, stdin=TEXT.encode())) == from_file


@pytest.mark.parametrize("name", ["events.jsonl.gz", "events-without-suffix"])
def test_gzip_is_read_transparently(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(gzip.compress(TEXT.encode()))
    done = lineguard("replay", str(path), cwd=tmp_path)
    assert decisions(done) == ["u1"]
    assert b"5 events" in done.stderr and b"0 rejected" in done.stderr


def test_gzip_on_standard_input(tmp_path: Path) -> None:
    done = lineguard("replay", "-", cwd=tmp_path, stdin=gzip.compress(TEXT.encode()))
    assert decisions(done) == ["u1"]


BAD_INPUTS = {
    "missing": ("missing.jsonl", "cannot read missing.jsonl: no such file"),
    "directory": ("adir", "cannot read adir: is a directory"),
    "broken-gzip": ("broken.gz", "cannot read broken.gz: not valid gzip"),
}


@pytest.mark.parametrize(("name", "message"), BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_what_cannot_be_read_is_named_with_the_reason(
    tmp_path: Path, name: str, message: str
) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "broken.gz").write_bytes(gzip.compress(TEXT.encode())[:40])
    done = lineguard("replay", name, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.decode().startswith(f"lineguard: error: {message}")
    assert done.stderr.count(b"\n") == 1


def test_evaluate_reads_gzip_and_standard_input(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl.gz"
    events.write_bytes(gzip.compress(TEXT.encode()))
    labels = {"user_id": "u1", "archetype": "device_switcher",
              "expected_reason": "DEVICE_SWITCHING"}  # fmt: skip
    done = lineguard(
        "evaluate", "--events", str(events), "--labels", "-", "--until", "2026-03-02T00:00:00Z",
        "--report", str(tmp_path / "report"), cwd=tmp_path,
        stdin=(json.dumps(labels) + "\n").encode(),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert b"recall SERIOUS_OVERDUE n/a, CASH_OUT n/a, SCORE_SWIPING n/a" in done.stderr
    assert b"DEVICE_SWITCHING 100.0%" in done.stderr


def test_standard_input_only_once(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="only once"):
        sources(["-", "-"])


def test_sizes_and_progress_bytes(plain: Path) -> None:
    checked = source(plain)
    assert checked == Source(str(plain), plain, len(TEXT))
    assert total_size([checked]) == len(TEXT)
    assert total_size([checked, source("-")]) is None
    told: list[int] = []
    lines = [line for _, line in read_lines(checked, told.append)]
    assert b"".join(lines).decode() == TEXT
    assert sum(told) == len(TEXT)


def test_simulate_writes_gzip_that_replay_reads(tmp_path: Path) -> None:
    common = ["--users", "30", "--days", "20", "--seed", "4", "--quiet"]
    done = lineguard("simulate", *common, "--out", "events.jsonl.gz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    packed = (tmp_path / "events.jsonl.gz").read_bytes()
    assert packed.startswith(b"\x1f\x8b")
    lineguard("simulate", *common, "--out", "events.jsonl", cwd=tmp_path)
    assert gzip.decompress(packed) == (tmp_path / "events.jsonl").read_bytes()
    from_gzip = lineguard("replay", "events.jsonl.gz", cwd=tmp_path)
    from_text = lineguard("replay", "events.jsonl", cwd=tmp_path)
    assert from_gzip.returncode == 0 and from_gzip.stdout == from_text.stdout
