"""End-to-end throughput of ``lineguard worker`` beside a raw aiokafka consume-and-decode loop.

One run, one embedded broker, the same preloaded input topics:

1. raw: a group-less ``AIOKafkaConsumer`` reads every input record with ``getmany`` and
   decodes it (``workers.codec.decode``): the ceiling for any Python consumer here.
2. worker: a real ``lineguard worker`` process (event clock, memory store) consumes the same
   records; timed from the moment it reports ready to the moment the broker holds its
   committed offsets at the end of every input partition. In between, every event is
   decoded, decided, state and changelog are written, outputs are acknowledged. The
   worker process's CPU seconds over the same span are reported too (``worker_cpu_seconds``,
   ``worker_cpu_us_per_event``): less moved than wall time by the broker and other work
   sharing the cores, so the figure to pair when comparing two versions.
3. peers (``--peers``, each in its own process, on the same topics, with the same per-event
   core logic, ``bench/peers/logic.py``): a textbook Faust agent with a Table write per
   event (``peers/faust_agent.py``) and a textbook quix-streams application with RocksDB
   state (``peers/quix_app.py``, run by ``.venv-peers``: ``make install-peers``). Each is
   timed from its first event to its last (or to ``--peer-events``: peers are slow, and a
   rate is what is compared) and reported as a ratio to the raw loop; a peer
   that cannot run is reported as skipped or failed with its error.

Usage: python bench/worker_bench.py [--users 2000] [--days 200] [--partitions 6]
       [--peers faust,quix] [--peer-events N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from workers.broker import EmbeddedBroker
from workers.codec import Rejected, decode
from workers.settings import Settings
from workers.sim.generator import SimulationConfig, generate_records
from workers.stream.clients import prepare_topics
from workers.stream.worker_process import WorkerProcess

BENCH = Path(__file__).resolve().parent
PEERS_PYTHON = BENCH.parent / ".venv-peers" / "bin" / "python"
PEERS: dict[str, tuple[Path, Path]] = {
    # name -> (script, the Python that runs it)
    "faust": (BENCH / "peers" / "faust_agent.py", Path(sys.executable)),
    "quix": (
        BENCH / "peers" / "quix_app.py",
        Path(os.environ.get("BENCH_PEERS_PYTHON", PEERS_PYTHON)),
    ),
}
"""``BENCH_PEERS_PYTHON``: the Python of the peers' environment (``.venv-peers``)."""
PEER_TIMEOUT_SECONDS = 600


async def preload(settings: Settings, config: SimulationConfig) -> int:
    topic_of = {event_type: topic for topic, event_type in settings.topics.inputs().items()}
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.brokers, linger_ms=20, max_batch_size=512 * 1024
    )
    await producer.start()
    sent = 0
    try:
        pending = []
        for record in generate_records(config):
            topic = topic_of[record.event_type]
            pending.append(await producer.send(topic, record.value, key=record.user_id.encode()))
            sent += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent


async def raw_loop(settings: Settings, total: int) -> float:
    """Seconds for a plain consumer to read and decode ``total`` input records."""
    types = settings.topics.inputs()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.brokers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 * 1024 * 1024,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in types for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = rejected = 0
        started = time.perf_counter()
        while seen < total:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for tp, records in batch.items():
                expected = types[tp.topic]
                for record in records:
                    if isinstance(decode(record.value, record.key, expected), Rejected):
                        rejected += 1
                seen += len(records)
        elapsed = time.perf_counter() - started
        assert rejected == 0, f"{rejected} records did not decode"
        return elapsed
    finally:
        await consumer.stop()


async def committed_total(settings: Settings, consumer: AIOKafkaConsumer) -> int:
    total = 0
    for topic in settings.topics.inputs():
        for partition in range(settings.partitions):
            total += await consumer.committed(TopicPartition(topic, partition)) or 0
    return total


async def worker_run(
    settings: Settings, total: int, workdir: Path
) -> tuple[float, dict[str, float]]:
    """Seconds from the worker's readiness to all its input offsets committed; with the
    metrics, the worker process's CPU seconds over that span (``worker_cpu_seconds``)."""
    worker = WorkerProcess(
        ",".join(settings.brokers),
        workdir,
        partitions=str(settings.partitions),
        clock="event",
        session_timeout_seconds="6",
        log_level="WARNING",
    ).start()
    checker = AIOKafkaConsumer(bootstrap_servers=settings.brokers, group_id=settings.group_id)
    try:
        while not worker.ready():
            if not worker.running():
                raise SystemExit(f"the worker exited: {worker.log_tail()}")
            await asyncio.sleep(0.01)
        started = time.perf_counter()
        cpu_at_start = _cpu_seconds(worker)
        await checker.start()
        while await committed_total(settings, checker) < total:
            await asyncio.sleep(0.02)
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds(worker) - cpu_at_start
        return elapsed, {**_summed(worker.metrics()), "worker_cpu_seconds": cpu}
    finally:
        await checker.stop()
        worker.stop()


def _cpu_seconds(worker: WorkerProcess) -> float:
    """The worker process's CPU time so far, user and system (Linux ``/proc``)."""
    assert worker.process is not None
    fields = Path(f"/proc/{worker.process.pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _summed(metrics: dict[str, float]) -> dict[str, float]:
    wanted = ("lineguard_decisions_total", "lineguard_flags_total", "lineguard_duplicates_total")
    values: dict[str, float] = {"batches": metrics.get("lineguard_batch_duration_seconds_count", 0)}
    for name, value in metrics.items():
        if name.startswith(wanted):
            key = name.split("{")[0]
            values[key] = values.get(key, 0.0) + value
    return values


def run_peer(name: str, settings: Settings, total: int, workdir: Path) -> dict[str, Any]:
    """Run one peer over the preloaded topics until it has processed ``total`` events: its
    result, or why it has none."""
    script, python = PEERS[name]
    if not python.exists():
        return {"status": "skipped", "reason": f"{python} is absent (make install-peers)"}
    result = workdir / f"{name}-result.json"
    command = [str(python), str(script), "--brokers", settings.brokers[0]]
    command += ["--partitions", str(settings.partitions), "--total", str(total)]
    command += ["--result", str(result), "--workdir", str(workdir / name)]
    (workdir / name).mkdir(exist_ok=True)
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PEER_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        return {"status": "failed", "error": f"no result within {PEER_TIMEOUT_SECONDS} s"}
    wall = round(time.perf_counter() - started, 1)  # start-up and shutdown included
    if not result.exists():
        tail = (done.stderr or done.stdout or "")[-1500:]
        return {"status": "failed", "error": f"exit status {done.returncode}: {tail}"}
    return {"status": "ok", **json.loads(result.read_text()), "process_seconds": wall}


async def main(args: argparse.Namespace) -> dict[str, object]:
    config = SimulationConfig(users=args.users, days=args.days, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="lineguard-bench-") as directory:
        base = Settings()  # LINEGUARD_TANSU_BINARY and the topic names apply here too
        async with EmbeddedBroker(binary=base.tansu_binary) as broker:
            settings = base.model_copy(
                update={"brokers": [broker.bootstrap], "partitions": args.partitions}
            )
            await prepare_topics(settings)
            started = time.perf_counter()
            total = await preload(settings, config)
            produce_seconds = time.perf_counter() - started
            raw_seconds = await raw_loop(settings, total)
            worker_seconds, metrics = await worker_run(settings, total, Path(directory))
            worker_cpu = metrics["worker_cpu_seconds"]
            peers: dict[str, dict[str, Any]] = {}
            for name in args.peers:
                count = min(total, args.peer_events) if args.peer_events else total
                peer = await asyncio.to_thread(run_peer, name, settings, count, Path(directory))
                if peer.get("events_per_s"):  # rates: a peer may stop before the end
                    peer["ratio_to_raw"] = round(peer["events_per_s"] * raw_seconds / total, 4)
                peers[name] = peer
    return {
        "events": total,
        "users": args.users,
        "partitions": args.partitions,
        "produce_events_per_s": round(total / produce_seconds),
        "raw_consume_decode_events_per_s": round(total / raw_seconds),
        "worker_end_to_end_events_per_s": round(total / worker_seconds),
        "worker_seconds": round(worker_seconds, 2),
        "worker_ratio_to_raw": round(raw_seconds / worker_seconds, 4),
        "worker_cpu_seconds": round(metrics.pop("worker_cpu_seconds"), 2),
        "worker_cpu_us_per_event": round(worker_cpu * 1e6 / total, 1),
        **{name: int(value) for name, value in metrics.items()},
        "peers": peers,
    }


def _names(text: str) -> list[str]:
    names = [part for part in text.split(",") if part]
    unknown = [name for name in names if name not in PEERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown peers {unknown}; known: {', '.join(PEERS)}")
    return names


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--days", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--peers", type=_names, default=[], help="comma-separated: faust, quix (none by default)"
    )
    parser.add_argument(
        "--peer-events",
        type=int,
        default=0,
        help="each peer stops after this many events (0: all); its rate is what is compared",
    )
    parser.add_argument("--json", action="store_true", help="the report as JSON (the default)")
    result = asyncio.run(main(parser.parse_args()))
    print(json.dumps(result, indent=2))
