"""``lineguard worker`` as a child process: how the demo, the benchmark and the tests run it.

Each child gets its own web port, data directory and log file, runs in its own session
(a Ctrl-C in the terminal reaches the owner, which stops its children in order) and is
stopped with SIGTERM, which lets it finish and commit the batch in hand.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from workers.broker import free_port
from workers.errors import LineguardError


class WorkerProcess:
    """One worker; ``settings`` become ``LINEGUARD_<NAME>`` variables (nested with ``__``)."""

    def __init__(
        self, brokers: str, directory: Path, name: str = "worker", **settings: str
    ) -> None:
        self.name = name
        self.port = int(settings.pop("web_port", 0)) or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / f"{name}.log"
        self.env = {
            **os.environ,
            "LINEGUARD_BROKERS": brokers,
            "LINEGUARD_WEB_PORT": str(self.port),
            "LINEGUARD_DATA_DIR": str(directory / f"{name}-data"),
            **{f"LINEGUARD_{key.upper()}": str(value) for key, value in settings.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "workers.cli", "worker"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def status_token(self) -> str | None:
        """The worker's ``LINEGUARD_STATUS_TOKEN``, if it has one."""
        return self.env.get("LINEGUARD_STATUS_TOKEN") or None

    def request(
        self, path: str, headers: dict[str, str] | None = None, timeout: float = 5.0
    ) -> tuple[int, Any, dict[str, str]]:
        """(HTTP status, decoded JSON body, headers) of a GET on the worker's web port.

        ``headers`` None: the worker's own status token as a bearer token, if it has one."""
        if headers is None:
            token = self.status_token
            headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, _body(response.read()), dict(response.headers.items())
        except urllib.error.HTTPError as exc:
            return exc.code, _body(exc.read()), dict(exc.headers.items())

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, Any]:
        """(HTTP status, decoded JSON body) of a GET, with the worker's status token."""
        status, body, _ = self.request(path, timeout=timeout)
        return status, body

    def ready(self) -> bool:
        try:
            return self.get("/readyz", timeout=2.0)[0] == 200
        except (OSError, ValueError):
            return False

    def wait_ready(self, timeout: float = 60.0) -> WorkerProcess:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if not self.running():
                raise LineguardError(f"worker {self.name} exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise LineguardError(
                    f"worker {self.name} not ready in {timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)
        return self

    def metrics(self) -> dict[str, float]:
        """Every sample of ``/metrics``: ``name{labels}`` -> value (empty if unreachable)."""
        try:
            with urllib.request.urlopen(self.url + "/metrics", timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return {}
        values: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                values[name] = float(value)
        return values

    def consumed(self) -> float:
        """Input records consumed so far: valid events plus dead letters."""
        prefixes = ("lineguard_events_consumed_total", "lineguard_dead_letters_total")
        return sum(value for name, value in self.metrics().items() if name.startswith(prefixes))

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait: the worker finishes its batch, commits and exits."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """Terminate if running; kill if it does not exit in time."""
        if self.running():
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-chars:]
        return ""


def _body(raw: bytes) -> Any:
    """A response's JSON body; a body that is not JSON (a router's 404 page) as text."""
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return raw.decode(errors="replace")
