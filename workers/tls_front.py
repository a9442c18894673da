"""A TLS-terminating TCP front for the embedded broker, for tests and the embedded demo.

The embedded broker (Tansu) speaks plain TCP only. ``TlsFront`` listens on a loopback port
with a server certificate, optionally requires client certificates signed by a CA, and
pipes each connection's bytes to the broker. Start the broker with its advertised address
set to the front (``EmbeddedBroker(advertised_port=front.port)``) so that clients that
follow the cluster metadata come back through TLS too.

Not for production: real clusters terminate TLS in the brokers themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import ssl
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

from workers.broker import free_port
from workers.errors import LineguardError

_CHUNK = 64 * 1024


class TlsFrontError(LineguardError):
    """The TLS front cannot start."""


CERTIFICATE_FILES = ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")


def make_certificates(directory: Path) -> dict[str, Path]:
    """A throw-away CA, a server certificate for 127.0.0.1 and a client certificate, made
    with the ``openssl`` command in ``directory``; file name -> path."""
    if shutil.which("openssl") is None:
        raise TlsFrontError("making test certificates needs the openssl command")
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(directory, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=lineguard test CA")  # fmt: skip
    _issue(directory, "server", "/CN=127.0.0.1",
           "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth")  # fmt: skip
    _issue(directory, "client", "/CN=lineguard-worker", "extendedKeyUsage=clientAuth")
    return {name: directory / name for name in CERTIFICATE_FILES}


def _openssl(directory: Path, *args: str) -> None:
    try:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)
    except subprocess.CalledProcessError as exc:
        raise TlsFrontError(f"openssl {args[0]} failed: {exc.stderr.decode()[-500:]}") from exc


def _issue(directory: Path, name: str, subject: str, extensions: str) -> None:
    """``name``.key and ``name``.pem, signed by the CA in ``directory``."""
    _openssl(directory, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout",
             f"{name}.key", "-out", f"{name}.csr", "-subj", subject)  # fmt: skip
    (directory / f"{name}.ext").write_text(extensions + "\n")
    _openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey",
             "ca.key", "-CAcreateserial", "-days", "2", "-out", f"{name}.pem",
             "-extfile", f"{name}.ext")  # fmt: skip


def server_context(certfile: Path, keyfile: Path, client_cafile: Path | None) -> ssl.SSLContext:
    """TLS 1.2 or newer with the server's certificate; client certificates required when a
    CA is given."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(certfile), str(keyfile))
    if client_cafile is not None:
        context.load_verify_locations(cafile=str(client_cafile))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


class TlsFront:
    """TLS on ``host:port`` in front of the plain TCP ``upstream`` (``host:port``).

    Runs its own event loop in a thread, so blocking callers (the tests' waits) do not
    stall it. A context manager; ``handshakes`` counts completed TLS connections."""

    def __init__(
        self,
        upstream: str,
        certfile: Path,
        keyfile: Path,
        client_cafile: Path | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
    ) -> None:
        self.upstream_host, _, upstream_port = upstream.rpartition(":")
        self.upstream_port = int(upstream_port)
        self.context = server_context(certfile, keyfile, client_cafile)
        self.host = host
        self.port = port or free_port(host)
        self.handshakes = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> Self:
        started = threading.Event()
        failure: list[BaseException] = []

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._pipe, self.host, self.port, ssl=self.context)
                )
            except OSError as exc:
                failure.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            try:
                loop.run_forever()
            finally:
                self._server.close()
                loop.run_until_complete(self._server.wait_closed())
                loop.close()

        self._thread = threading.Thread(target=serve, name="tls-front", daemon=True)
        self._thread.start()
        started.wait()
        if failure:
            raise TlsFrontError(f"cannot listen on {self.bootstrap}: {failure[0]}")
        return self

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
        self._loop = self._thread = None

    async def _pipe(
        self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter
    ) -> None:
        self.handshakes += 1
        try:
            broker_in, broker_out = await asyncio.open_connection(
                self.upstream_host, self.upstream_port
            )
        except OSError:
            client_out.close()
            return
        await asyncio.gather(_copy(client_in, broker_out), _copy(broker_in, client_out))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while chunk := await source.read(_CHUNK):
            sink.write(chunk)
            await sink.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(OSError, ssl.SSLError, RuntimeError):
            sink.close()
