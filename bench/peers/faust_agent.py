"""Peer: a textbook Faust application over the six preloaded input topics.

One ``faust.App``, a ``Table`` of users (each user's serialised state, memory store with
its changelog topic), one agent over the six topics; per event: decode, read the user's
state from the table, fold the event into it (``logic.fold``), write the state back (one
Table write per event) and send the outputs to a topic. Timed from the first event the
agent sees to the last; the result goes to ``--result`` as JSON, then the process ends.

    python bench/peers/faust_agent.py --brokers HOST:PORT --partitions 6 --total N --result F
        --workdir DIR
"""

from __future__ import annotations

import argparse
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import faust
from logic import Clock, fold

from workers.settings import Settings


def build(args: argparse.Namespace, clock: Clock, datadir: str) -> faust.App:
    topics = Settings().topics
    event_types = topics.inputs()  # topic -> event type
    app = faust.App(
        f"lineguard-bench-faust-{uuid.uuid4().hex[:8]}",
        broker=f"kafka://{args.brokers}",
        store="memory://",
        datadir=datadir,
        topic_partitions=args.partitions,
        web_enabled=False,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        key_serializer="raw",
        value_serializer="raw",
        # The group timeouts the worker uses: with the defaults, the embedded broker held
        # the first join for about 30 s of idle start-up.
        broker_session_timeout=6.0,
        broker_heartbeat_interval=1.0,
        broker_rebalance_timeout=6.0,
    )
    users = app.Table("users", default=None, partitions=args.partitions)
    source = app.topic(*event_types, key_type=bytes, value_type=bytes, value_serializer="raw")
    outputs = app.topic(
        f"bench-faust-outputs-{uuid.uuid4().hex[:8]}",
        partitions=args.partitions,
        key_type=bytes,
        value_type=bytes,
        value_serializer="raw",
    )

    @app.agent(source)  # type: ignore[untyped-decorator]
    async def process(stream: Any) -> None:
        async for event in stream.events():
            message = event.message
            key = message.key or b""
            done = fold(message.value, message.key, event_types[message.topic], users.get(key))
            written = 0
            if done is not None:
                blob, records = done
                users[key] = blob
                for record in records:
                    await outputs.send(key=message.key, value=record)
                written = len(records)
            if clock.tick(written):
                clock.write(args.result)
                os._exit(0)

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--total", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="Faust's data directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    clock = Clock(args.total)
    app = build(args, clock, str(args.workdir))
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
