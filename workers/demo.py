"""``lineguard demo``: embedded broker, the worker and simulated traffic; decisions on screen.

Starts the embedded broker, creates the topics, starts ``lineguard worker`` (event clock),
streams a labelled population of simulated borrowers (ordinary ones and every risky
behaviour of the policy, plus a few malformed records) into the input topics, prints each
decision as it arrives with a progress line, then a summary table, and stops; its files
live in a temporary directory that is removed. With ``--keep`` the broker and worker stay
up after the summary, with links to the worker's pages, until Ctrl-C. Ctrl-C stops the
traffic, then the worker (which commits), then the broker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import secrets
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import orjson
from pydantic import ValidationError

from workers.broker import EmbeddedBroker, free_port
from workers.problems import settings_problem
from workers.stream.worker_process import WorkerProcess
from workers.tls_front import TlsFront, make_certificates

_BAD_VALUES = (b"{not json", b'{"type": "teleport", "event_id": "x", "user_id": "u"}')


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=2000, help="simulated users (default 2000)")
    parser.add_argument("--days", type=int, default=180, help="simulated span in days")
    parser.add_argument("--rate", type=float, default=25_000, help="events/s offered to Kafka")
    parser.add_argument("--duration", type=float, help="stop offering traffic after N seconds")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--web-port", type=int, default=0, help="worker web port (0: a free one)")
    parser.add_argument("--bad-every", type=int, default=2000, help="one malformed record per N")
    parser.add_argument("--show", type=int, default=40, help="decisions printed one per line")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="after the summary, keep the broker and worker running until Ctrl-C and print "
        "links to the worker's pages (without it, everything stops and is cleaned up)",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="reach the broker over TLS with client certificates (needs openssl)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(Demo(args, sys.stdout).run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\nstopped.", file=sys.stderr)
        return 130
    except ValidationError as exc:
        raise settings_problem(exc) from exc


class Demo:
    def __init__(self, args: argparse.Namespace, out: TextIO) -> None:
        self.args = args
        self.out = out
        self.tty = out.isatty()
        self.labels: dict[str, str] = {}
        self.decisions: Counter[tuple[str, str]] = Counter()
        self.dead_letters: Counter[str] = Counter()
        self.flags = 0
        self.shown = 0
        self.sent = 0
        self.processed = 0.0
        self.example_user: str | None = None
        self.records: list[Any] = []
        self.timeline: list[tuple[float, float]] = []
        # A fresh status token per run: /users/{user_id} needs it as a bearer token.
        self.token = secrets.token_urlsafe(24)

    async def run(self) -> int:
        from workers.settings import Security, Settings
        from workers.sim.generator import SimulationConfig, generate_records

        # SIGTERM stops the demo like Ctrl-C does: the worker, then the broker.
        main = asyncio.current_task()
        assert main is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
        args = self.args
        config = SimulationConfig(users=args.users, days=args.days, seed=args.seed)
        self.records = list(
            self._with_bad_records(
                generate_records(
                    config, on_label=lambda lab: self._label(lab.user_id, lab.archetype)
                )
            )
        )
        with tempfile.TemporaryDirectory(prefix="lineguard-demo-") as directory:
            base = Settings()  # LINEGUARD_TANSU_BINARY and the topic names apply here too
            tls = make_certificates(Path(directory) / "tls") if args.tls else None
            front_port = free_port() if tls else None
            async with EmbeddedBroker(
                binary=base.tansu_binary, advertised_port=front_port
            ) as broker:
                with contextlib.ExitStack() as stack:
                    bootstrap, security = broker.bootstrap, Security()
                    if tls is not None:
                        front = TlsFront(
                            broker.bootstrap,
                            tls["server.pem"],
                            tls["server.key"],
                            client_cafile=tls["ca.pem"],
                            port=front_port,
                        )
                        bootstrap = stack.enter_context(front).bootstrap
                        security = Security(
                            protocol="SSL",
                            ssl_cafile=tls["ca.pem"],
                            ssl_certfile=tls["client.pem"],
                            ssl_keyfile=tls["client.key"],
                        )
                    return await self._run_worker(base, bootstrap, security, Path(directory))

    async def _run_worker(self, base: Any, bootstrap: str, security: Any, directory: Path) -> int:
        args = self.args
        settings = base.model_copy(
            update={"brokers": [bootstrap], "partitions": args.partitions, "security": security}
        )
        tls = {
            f"security__{name}": str(value)
            for name, value in security.model_dump(exclude_none=True).items()
            if name in ("protocol", "ssl_cafile", "ssl_certfile", "ssl_keyfile")
        }
        worker = WorkerProcess(
            bootstrap,
            directory,
            partitions=str(settings.partitions),
            clock="event",
            store="memory",
            web_port=str(args.web_port),
            session_timeout_seconds="3",
            heartbeat_interval_seconds="0.5",
            log_format="json",
            status_token=self.token,
            **tls,
        )
        try:
            return await self._stream(settings, bootstrap, worker, self.records)
        finally:
            await asyncio.to_thread(worker.stop)

    def _label(self, user_id: str, archetype: str) -> None:
        self.labels[user_id] = archetype

    def _with_bad_records(self, records: Iterator[Any]) -> Iterator[Any]:
        every = self.args.bad_every
        for index, record in enumerate(records, start=1):
            yield record
            if every > 0 and index % every == 0:
                yield type(record)(
                    record.event_type, record.user_id, _BAD_VALUES[index // every % 2]
                )

    async def _stream(
        self, settings: Any, bootstrap: str, worker: WorkerProcess, records: list[Any]
    ) -> int:
        from workers.sim.producer import offer
        from workers.stream.clients import prepare_topics

        await prepare_topics(settings)
        worker.start()
        await asyncio.to_thread(worker.wait_ready)
        self._say(
            f"lineguard demo: broker {bootstrap}"
            f"{' (TLS)' if settings.security.protocol == 'SSL' else ''}, "
            f"{settings.partitions} partitions, event clock\n"
            f"  streaming {len(records):,} records of {self.args.users:,} simulated users "
            f"({self.args.days} days) at {self.args.rate:,.0f}/s\n"
        )
        reader = asyncio.create_task(self._read_outputs(settings))
        watcher = asyncio.create_task(self._watch(worker))
        started = time.monotonic()
        try:
            await offer(self._counted(records), settings, self.args.rate)
            await self._settle(worker)
        finally:
            watcher.cancel()
            await asyncio.sleep(0.5)
            reader.cancel()
        self._summary(time.monotonic() - started)
        if not self.args.keep:
            self._say(
                "  the worker and broker stop now; pass --keep to leave them running and "
                "browse the worker's /metrics and /users/{user_id} pages\n",
                progress=False,
            )
            return 0
        example = self.example_user or "u00000001"
        self._say(
            f"  metrics: {worker.url}/metrics\n  status:  {self.curl(worker, example)}\n"
            "  running until Ctrl-C (the lines above work until then)\n",
            progress=False,
        )
        await asyncio.Event().wait()
        return 0

    def _counted(self, records: list[Any]) -> Iterator[Any]:
        """Counts records as the producer takes them; ends early after ``--duration``."""
        deadline = time.monotonic() + (self.args.duration or float("inf"))
        for record in records:
            if time.monotonic() >= deadline:
                return
            self.sent += 1
            yield record

    async def _settle(self, worker: WorkerProcess) -> None:
        """Wait until the worker has consumed everything sent and gone quiet."""
        produced = self.sent
        quiet_since, batches = time.monotonic(), -1.0
        while True:
            consumed, batch_count = await _progress_of(worker)
            now = time.monotonic()
            if batch_count != batches:
                batches, quiet_since = batch_count, now
            caught_up = consumed >= produced
            if (caught_up and now - quiet_since > 1.0) or now - quiet_since > 15.0:
                return
            await asyncio.sleep(0.25)

    async def _watch(self, worker: WorkerProcess) -> None:
        while True:
            self.processed, _ = await _progress_of(worker)
            self.timeline.append((time.monotonic(), self.processed))
            self._progress()
            await asyncio.sleep(0.5)

    async def _read_outputs(self, settings: Any) -> None:
        from aiokafka import AIOKafkaConsumer, TopicPartition

        from workers.stream.clients import connection_options

        topics = settings.topics
        consumer = AIOKafkaConsumer(**connection_options(settings))
        await consumer.start()
        try:
            tps = [
                TopicPartition(topic, p)
                for topic in (topics.decisions, topics.flags, topics.dead_letter)
                for p in range(settings.partitions)
            ]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            while True:
                batch = await consumer.getmany(timeout_ms=200)
                for tp, items in batch.items():
                    for record in items:
                        if tp.topic == topics.decisions:
                            self._decision(orjson.loads(record.value))
                        elif tp.topic == topics.flags:
                            self.flags += 1
                        else:
                            kind = dict(record.headers).get("error_kind", b"?").decode()
                            self.dead_letters[kind] += 1
        finally:
            await consumer.stop()

    def _decision(self, decision: dict[str, Any]) -> None:
        codes = [reason["code"] for reason in decision["reasons"]] or ["-"]
        for code in codes:
            self.decisions[(decision["decision"], code)] += 1
        user_id = decision["user_id"]
        self.example_user = self.example_user or user_id
        if self.shown < self.args.show:
            self.shown += 1
            verb = "CLOSE  " if decision["decision"] == "close_line" else "RESTORE"
            simulated = self.labels.get(user_id, "?")
            self._say(
                f"  {decision['decided_at'][:16]}  {verb}  {user_id:<12} "
                f"{', '.join(codes):<28} (simulated: {simulated})\n"
            )
        elif self.shown == self.args.show:
            self.shown += 1
            self._say("  ... further decisions are counted in the summary\n")

    def _progress(self) -> None:
        decisions = sum(self.decisions.values())
        line = (
            f"sent {self.sent:,} | processed {self.processed:,.0f} | decisions {decisions:,}"
            f" | flags {self.flags:,} | dead letters {sum(self.dead_letters.values()):,}"
        )
        if self.tty:
            self.out.write("\r\x1b[2K" + line)
            self.out.flush()
        else:
            self.out.write(line + "\n")

    def _say(self, text: str, progress: bool = True) -> None:
        if self.tty:
            self.out.write("\r\x1b[2K")
        self.out.write(text)
        if self.tty and progress:
            self._progress()  # keep the progress line under the newest decision
        self.out.flush()

    def curl(self, worker: WorkerProcess, user_id: str) -> str:
        """A command line that reads one user's status from the running worker."""
        return f"curl -H 'Authorization: Bearer {self.token}' {worker.url}/users/{user_id}"

    def _summary(self, elapsed: float) -> None:
        busy = [(t, n) for t, n in self.timeline if n > 0]
        span = busy[-1][0] - busy[0][0] if len(busy) > 1 else 0.0
        rate = (busy[-1][1] - busy[0][1]) / span if span > 0 else 0.0
        rows = [("records sent", f"{self.sent:,}"), ("records processed", f"{self.processed:,.0f}")]
        rows += [("flags", f"{self.flags:,}")]
        for (kind, code), count in sorted(self.decisions.items()):
            rows.append((f"{kind} {code}", f"{count:,}"))
        for kind, count in sorted(self.dead_letters.items()):
            rows.append((f"dead letters {kind}", f"{count:,}"))
        rows += [
            ("events/s processed by the worker", f"{rate:,.0f}"),
            ("wall time (s)", f"{elapsed:.1f}"),
        ]
        width = max(len(name) for name, _ in rows)
        table = "\n".join(f"  {name:<{width}}  {value:>10}" for name, value in rows)
        self._say(f"\n\nsummary\n{table}\n\n", progress=False)


async def _progress_of(worker: WorkerProcess) -> tuple[float, float]:
    """(input records consumed, batches done) from the worker's metrics."""
    metrics = await asyncio.to_thread(worker.metrics)
    consumed = sum(
        value
        for name, value in metrics.items()
        if name.startswith(("lineguard_events_consumed_total", "lineguard_dead_letters_total"))
    )
    return consumed, metrics.get("lineguard_batch_duration_seconds_count", 0.0)
