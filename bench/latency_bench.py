"""Event-to-decision latency of ``lineguard worker`` under an open-loop load.

For each offered rate, one fresh embedded broker and one fresh ``lineguard worker`` (event
clock, memory store, 4 partitions by default): once the worker is ready, the first
``--events`` records of a simulated population are produced OPEN LOOP (record ``i`` leaves
at ``start + i / rate``, whatever the worker does), each with an explicit Kafka timestamp
taken at the moment it is handed to the producer. When the broker holds the worker's
committed offsets at the end of every input partition (outputs are acknowledged before
offsets are committed), ``lineguard.decisions`` and ``lineguard.flags`` are read back.

Latency of an output = its Kafka timestamp (set by the worker's producer when it sends the
output) minus the send timestamp of the input record named by its ``trigger_event_id``.
Time-triggered outputs (deadlines: overdue days, inactivity, restore eligibility) carry
``trigger_event_id: null`` and are counted apart, not measured. Outputs are read after the
run, so the reader does not compete with the worker for the two cores.

Usage: python bench/latency_bench.py [--rates 5000,10000,20000] [--events 100000]
       [--align-waits 20,0] [--align-rate 10000] [--json]

``--align-waits``: extra runs at ``--align-rate`` with a smaller ``LINEGUARD_ALIGN_WAIT_MS``
than the setting's value (the other runs use the setting as the environment gives it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from worker_bench import committed_total

from workers.broker import EmbeddedBroker
from workers.settings import Settings
from workers.sim.generator import SimulationConfig, WireRecord, generate_records
from workers.sim.producer import topic_for
from workers.stream.clients import prepare_topics
from workers.stream.worker_process import WorkerProcess


@dataclass
class Run:
    rate: int
    align_wait_ms: int
    events: int = 0
    achieved_rate: float = 0.0
    latencies_ms: list[int] | None = None
    time_triggered: int = 0
    unmatched: int = 0
    worker_mean_ms: float = 0.0
    late_events: int = 0
    max_backlog: int = 0


def population(args: argparse.Namespace) -> tuple[list[WireRecord], list[str]]:
    """The first ``--events`` records of the population, and each one's event id."""
    config = SimulationConfig(users=args.users, days=args.days, seed=args.seed)
    records: list[WireRecord] = []
    for record in generate_records(config):
        records.append(record)
        if len(records) >= args.events:
            break
    return records, [orjson.loads(record.value)["event_id"] for record in records]


async def produce_open_loop(
    settings: Settings, records: list[WireRecord], rate: float, sent_ms: list[int]
) -> float:
    """Send record ``i`` at ``started + i / rate``, appending its timestamp (ms, the time it
    was handed to the producer) to ``sent_ms``; returns the seconds until the last ack."""
    routes = topic_for(settings.topics)
    producer = AIOKafkaProducer(bootstrap_servers=settings.brokers, linger_ms=5, acks=1)
    await producer.start()
    pending: list[asyncio.Future[object]] = []
    try:
        started = time.monotonic()
        for index, record in enumerate(records):
            due = started + index / rate
            now = time.monotonic()
            if due > now + 0.001:
                await asyncio.sleep(due - now)
            stamp = int(time.time() * 1000)
            sent_ms.append(stamp)
            pending.append(
                await producer.send(
                    routes[record.event_type],
                    record.value,
                    key=record.user_id.encode(),
                    timestamp_ms=stamp,
                )
            )
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        elapsed = time.monotonic() - started
    finally:
        await producer.stop()
    return elapsed


async def read_outputs(settings: Settings) -> list[tuple[int, str | None]]:
    """(Kafka timestamp ms, trigger_event_id) of every decision and flag written."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.brokers, enable_auto_commit=False)
    await consumer.start()
    try:
        topics = (settings.topics.decisions, settings.topics.flags)
        tps = [TopicPartition(t, p) for t in topics for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        outputs: list[tuple[int, str | None]] = []
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            for records in batch.values():
                for record in records:
                    value = orjson.loads(record.value)
                    outputs.append((record.timestamp, value["trigger_event_id"]))
        return outputs
    finally:
        await consumer.stop()


async def one_run(
    args: argparse.Namespace, records: list[WireRecord], event_ids: list[str], run: Run
) -> Run:
    with tempfile.TemporaryDirectory(prefix="lineguard-latency-") as directory:
        base = Settings()
        async with EmbeddedBroker(binary=base.tansu_binary) as broker:
            settings = base.model_copy(
                update={"brokers": [broker.bootstrap], "partitions": args.partitions}
            )
            await prepare_topics(settings)
            worker = WorkerProcess(
                broker.bootstrap,
                Path(directory),
                partitions=str(args.partitions),
                clock="event",
                align_wait_ms=str(run.align_wait_ms),
                session_timeout_seconds="6",
                log_level="WARNING",
            ).start()
            checker = AIOKafkaConsumer(
                bootstrap_servers=settings.brokers, group_id=settings.group_id
            )
            try:
                await asyncio.to_thread(worker.wait_ready, 60.0)
                sent_ms: list[int] = []
                sampler = asyncio.create_task(sample_backlog(worker, sent_ms, run))
                elapsed = await produce_open_loop(settings, records, run.rate, sent_ms)
                await checker.start()
                deadline = time.monotonic() + 120
                while await committed_total(settings, checker) < len(records):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"the worker fell behind: {worker.log_tail()}")
                    await asyncio.sleep(0.05)
                metrics = await asyncio.to_thread(worker.metrics)
                sampler.cancel()
            finally:
                await checker.stop()
                worker.stop()
            outputs = await read_outputs(settings)
    sent_at: dict[str, int] = {}
    for event_id, stamp in zip(event_ids, sent_ms, strict=True):
        sent_at.setdefault(event_id, stamp)  # a duplicate's first copy triggers the output
    latencies: list[int] = []
    for output_ms, trigger in outputs:
        if trigger is None:
            run.time_triggered += 1
        elif trigger in sent_at:
            latencies.append(output_ms - sent_at[trigger])
        else:
            run.unmatched += 1
    run.events = len(records)
    run.achieved_rate = len(records) / elapsed
    run.latencies_ms = sorted(latencies)
    count = metrics.get("lineguard_event_to_decision_latency_seconds_count", 0.0)
    total = metrics.get("lineguard_event_to_decision_latency_seconds_sum", 0.0)
    run.worker_mean_ms = 1000 * total / count if count else 0.0
    run.late_events = round(
        sum(v for name, v in metrics.items() if name.startswith("lineguard_late_events_total"))
    )
    return run


async def sample_backlog(worker: WorkerProcess, sent_ms: list[int], run: Run) -> None:
    """Every half second, events sent but not yet applied by the worker (at the broker or
    held in the worker); keeps the largest in ``run.max_backlog``."""
    while True:
        sent = len(sent_ms)
        applied = await asyncio.to_thread(worker.consumed)
        run.max_backlog = max(run.max_backlog, sent - round(applied))
        await asyncio.sleep(0.5)


def percentile(values: list[int], share: float) -> int:
    """Nearest-rank percentile of sorted ``values``."""
    return values[max(0, min(len(values) - 1, round(share * len(values) + 0.5) - 1))]


def table(runs: list[Run]) -> str:
    lines = [
        "| offered events/s | achieved events/s | events | align wait ms | outputs measured "
        "| time-triggered (excluded) | p50 ms | p90 ms | p99 ms | max ms "
        "| worker-side mean ms | late events | max backlog |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        values = run.latencies_ms or [0]
        cells = [
            f"{run.rate:,}",
            f"{run.achieved_rate:,.0f}",
            f"{run.events:,}",
            str(run.align_wait_ms),
            f"{len(run.latencies_ms or []):,}",
            f"{run.time_triggered:,}",
            *(f"{percentile(values, share):,}" for share in (0.5, 0.9, 0.99)),
            f"{values[-1]:,}",
            f"{run.worker_mean_ms:,.0f}",
            f"{run.late_events:,}",
            f"{run.max_backlog:,}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> None:
    records, event_ids = population(args)
    setting = Settings().align_wait_ms
    plan = [Run(rate, setting) for rate in args.rates]
    plan += [Run(args.align_rate, wait) for wait in args.align_waits if wait != setting]
    runs = []
    for run in plan:
        runs.append(await one_run(args, records, event_ids, run))
        unmatched = f", {run.unmatched} unmatched" if run.unmatched else ""
        progress = sys.stderr if args.json else sys.stdout
        print(f"done: {run.rate:,}/s, align wait {run.align_wait_ms} ms{unmatched}", file=progress)
    print(json.dumps([summary(run) for run in runs], indent=2) if args.json else table(runs))


def summary(run: Run) -> dict[str, object]:
    """One run's figures (latencies in ms; None when no output was measured)."""
    values = run.latencies_ms or []
    cut = {f"p{round(share * 100)}_ms": percentile(values, share) if values else None
           for share in (0.5, 0.9, 0.99)}  # fmt: skip
    return {
        "offered_events_per_s": run.rate,
        "achieved_events_per_s": round(run.achieved_rate),
        "events": run.events,
        "align_wait_ms": run.align_wait_ms,
        "outputs_measured": len(values),
        "time_triggered": run.time_triggered,
        "unmatched": run.unmatched,
        **cut,
        "max_ms": values[-1] if values else None,
        "worker_mean_ms": round(run.worker_mean_ms, 1),
        "late_events": run.late_events,
        "max_backlog": run.max_backlog,
    }


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=_ints, default=[5000, 10000, 20000])
    parser.add_argument("--events", type=int, default=100_000, help="events per run")
    parser.add_argument("--align-waits", type=_ints, default=[20, 0])
    parser.add_argument("--align-rate", type=int, default=10000)
    parser.add_argument("--users", type=int, default=4000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    asyncio.run(main(parser.parse_args()))
