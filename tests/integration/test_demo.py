"""``lineguard demo`` runs non-interactively, finishes by itself and summarises what it saw;
with ``--keep`` it stays up, and the links it prints answer, until Ctrl-C."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

import pytest

from tests.integration.harness import REPO

pytestmark = pytest.mark.integration

DEMO = [sys.executable, "-m", "workers.cli", "demo", "--users", "300", "--rate", "50000"]


def test_the_demo_streams_a_population_and_prints_a_summary() -> None:
    result = subprocess.run(
        DEMO,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "summary" in out
    assert "close_line" in out and "CLOSE" in out
    assert "dead letters not_json" in out
    sent = next(line for line in out.splitlines() if "records sent" in line).split()[-1]
    done = next(line for line in out.splitlines() if "records processed" in line).split()[-1]
    assert sent == done
    # Everything has stopped: no link to a page that no longer answers, but how to keep it.
    assert "http://" not in out
    assert "pass --keep" in out


def test_with_keep_the_printed_links_answer_until_ctrl_c() -> None:
    demo = subprocess.Popen(
        [*DEMO, "--keep"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert demo.stdout is not None
        links: dict[str, str] = {}
        for line in demo.stdout:
            name, _, value = (part.strip() for part in line.partition(": "))
            if name in ("metrics", "status") and value.startswith("http://"):
                links[name] = value
            if "running until Ctrl-C" in line:
                break
        assert set(links) == {"metrics", "status"}, links
        with urllib.request.urlopen(links["status"], timeout=10) as reply:
            assert json.loads(reply.read())["user_id"]
        with urllib.request.urlopen(links["metrics"], timeout=10) as reply:
            assert b"lineguard_events_consumed_total" in reply.read()
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 130
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
