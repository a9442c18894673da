"""``lineguard demo`` runs non-interactively, finishes by itself and summarises what it saw;
with ``--keep`` it stays up, and the links it prints answer, until Ctrl-C."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import urllib.request

import pytest

from tests.integration.harness import REPO

pytestmark = pytest.mark.integration

DEMO = [sys.executable, "-m", "workers.cli", "demo", "--users", "300", "--rate", "50000"]


def demo(*options: str) -> str:
    result = subprocess.run(
        [*DEMO, *options],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def counts(out: str) -> list[str]:
    """The summary's lines, less the two that measure speed."""
    summary = out[out.index("\nsummary\n") :].splitlines()
    return [line for line in summary if "events/s" not in line and "wall time" not in line]


def test_the_demo_streams_a_population_and_prints_a_summary() -> None:
    out = demo()
    assert "summary" in out
    assert "close_line" in out and "CLOSE" in out
    assert "dead letters not_json" in out
    sent = next(line for line in out.splitlines() if "records sent" in line).split()[-1]
    done = next(line for line in out.splitlines() if "records processed" in line).split()[-1]
    assert sent == done
    # Everything has stopped: no link to a page that no longer answers, but how to keep it.
    assert "http://" not in out
    assert "pass --keep" in out
    # The same input decides the same, however the six topics interleave on the way.
    assert counts(demo()) == counts(out)


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
            if name in ("metrics", "status"):
                links[name] = value
            if "running until Ctrl-C" in line:
                break
        assert set(links) == {"metrics", "status"}, links
        # The status line is a curl command with the demo's own bearer token.
        curl = re.fullmatch(
            r"curl -H 'Authorization: Bearer ([A-Za-z0-9_-]{16,})' (http://127\.0\.0\.1:\d+/users/\S+)",
            links["status"],
        )
        assert curl, links["status"]
        token, url = curl.groups()
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            assert json.loads(reply.read())["user_id"]
        with urllib.request.urlopen(links["metrics"], timeout=10) as reply:
            assert b"lineguard_events_consumed_total" in reply.read()
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 130
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()


def test_the_demo_runs_over_tls() -> None:
    if shutil.which("openssl") is None:
        pytest.skip("lineguard demo --tls makes its certificates with openssl, not found")
    out = demo("--tls")
    assert "(TLS)" in out
    assert "close_line" in out
