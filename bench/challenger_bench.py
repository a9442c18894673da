"""What a challenger policy costs: the same work with and without one, in pairs.

1. replay: ``lineguard replay`` of a simulated population, alone and with ``--challenger
   bench/challenger.toml --shadow /dev/null``, alternating; whole-process CPU seconds of
   each child (``getrusage``).
2. worker: a real ``lineguard worker`` (event clock, memory store) over the same preloaded
   population, each run on a fresh embedded broker, alone and with the challenger published
   to ``lineguard.policies`` before it starts, alternating; seconds from readiness to every
   input offset committed (as ``bench/worker_bench.py`` times it); the run with the
   challenger must have written to ``lineguard.shadow-decisions``, the other must not.

Each pair's ratio (with over without) is reported, and the median of the ratios: the
machine's speed drifts between pairs, much less within one.

Usage: python bench/challenger_bench.py [--users 4000] [--days 180] [--pairs 3]
       [--worker-users 2000] [--partitions 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from worker_bench import preload, worker_run

from workers.broker import EmbeddedBroker
from workers.policies import make_record
from workers.settings import Settings
from workers.sim.generator import SimulationConfig, generate_records
from workers.stream.clients import prepare_topics
from workers.stream.policy_feed import publish

BENCH = Path(__file__).resolve().parent
CHALLENGER = BENCH / "challenger.toml"


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed_replay(events: Path, until: str, challenger: bool) -> float:
    """CPU seconds of one ``lineguard replay`` process."""
    command = [sys.executable, "-m", "workers.cli", "replay", str(events), "--until", until]
    if challenger:
        command += ["--challenger", str(CHALLENGER), "--shadow", "/dev/null"]
    before = _child_cpu()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return _child_cpu() - before


def replay_pairs(users: int, days: int, pairs: int, directory: Path) -> dict[str, Any]:
    events = directory / "events.jsonl"
    subprocess.run(
        [sys.executable, "-m", "workers.cli", "simulate", "--users", str(users), "--days",
         str(days), "--seed", "7", "--out", str(events), "--quiet"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    count = sum(1 for _ in events.open())
    end = SimulationConfig().start.astimezone(UTC) + timedelta(days)  # simulate's default
    until_text = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    timed_replay(events, until_text, False)  # warm-up: caches, page cache
    alone, both = [], []
    for _ in range(pairs):
        alone.append(timed_replay(events, until_text, False))
        both.append(timed_replay(events, until_text, True))
    return _pairs(count, alone, both)


async def worker_once(config: SimulationConfig, partitions: int, challenger: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="lineguard-bench-") as directory:
        base = Settings()
        async with EmbeddedBroker(binary=base.tansu_binary) as broker:
            settings = base.model_copy(
                update={"brokers": [broker.bootstrap], "partitions": partitions}
            )
            await prepare_topics(settings)
            total = await preload(settings, config)
            if challenger:
                record, _ = make_record(
                    CHALLENGER.read_text(), "challenger", "bench", datetime.now(UTC)
                )
                await publish(settings, record)
            seconds, _ = await worker_run(settings, total, Path(directory))
            shadow = await records_in(settings, settings.topics.shadow_decisions)
            if challenger != (shadow > 0):
                raise SystemExit(f"{shadow} shadow records with challenger={challenger}")
            return seconds


async def records_in(settings: Settings, topic: str) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.brokers)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        ends = await consumer.end_offsets(tps)
        return sum(ends.values())
    finally:
        await consumer.stop()


async def worker_pairs(users: int, days: int, pairs: int, partitions: int) -> dict[str, Any]:
    config = SimulationConfig(users=users, days=days, seed=1)
    total = sum(1 for _ in generate_records(config))
    alone, both = [], []
    for _ in range(pairs):
        alone.append(await worker_once(config, partitions, False))
        both.append(await worker_once(config, partitions, True))
    return _pairs(total, alone, both)


def _pairs(events: int, alone: list[float], both: list[float]) -> dict[str, Any]:
    ratios = [b / a for a, b in zip(alone, both, strict=True)]
    return {
        "events": events,
        "alone_seconds": [round(s, 2) for s in alone],
        "with_challenger_seconds": [round(s, 2) for s in both],
        "alone_events_per_s": round(events / statistics.median(alone)),
        "with_challenger_events_per_s": round(events / statistics.median(both)),
        "ratios": [round(r, 3) for r in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
    }


def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lineguard-bench-") as directory:
        replay = replay_pairs(args.users, args.days, args.pairs, Path(directory))
    worker = asyncio.run(worker_pairs(args.worker_users, args.days, args.pairs, args.partitions))
    return {"challenger": CHALLENGER.name, "replay_cpu": replay, "worker_wall": worker}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4000, help="replay's population")
    parser.add_argument("--worker-users", type=int, default=2000, help="the worker's")
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--json", action="store_true", help="the report as JSON (the default)")
    print(json.dumps(main(parser.parse_args()), indent=2))
