"""Peer: a textbook quix-streams application over the six preloaded input topics.

One ``Application`` (RocksDB state under ``--workdir``, changelog topics on), the six
topics' ``StreamingDataFrame``s concatenated, a stateful ``apply`` per user: decode, read
the user's serialised state from the state store, fold the event into it
(``logic.fold``), store it back, and ``to_topic`` for the outputs. quix-streams' state
cannot hold bytes, so the state is stored as text (the serialised state is JSON).

Timed from the first event to the last; the result goes to ``--result`` as JSON, then the
application stops. Runs from ``.venv-peers`` (``make install-peers``): quix-streams caps
pydantic below the dev environment's.

    .venv-peers/bin/python bench/peers/quix_app.py --brokers HOST:PORT --partitions 6
        --total N --result F --workdir DIR
"""

from __future__ import annotations

import argparse
import logging
import uuid
from pathlib import Path
from typing import Any

from logic import Clock, fold
from quixstreams import Application, State, message_context
from quixstreams.models import TopicConfig

from workers.settings import Settings

RETENTION = {"retention.ms": "-1", "retention.bytes": "-1"}
"""The embedded broker (Tansu) does not report these; quix-streams derives its changelog
topics' settings from the input topics' and needs them."""


def build(args: argparse.Namespace, clock: Clock) -> Application:
    event_types = Settings().topics.inputs()  # topic -> event type
    app = Application(
        broker_address=args.brokers,
        consumer_group=f"lineguard-bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=str(args.workdir),
        loglevel="WARNING",
        # The group timeouts the worker uses: with the defaults, the embedded broker held
        # the first join for about 30 s of idle start-up.
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )
    config = TopicConfig(
        num_partitions=args.partitions, replication_factor=1, extra_config=RETENTION
    )
    topics = [
        app.topic(name, key_deserializer="bytes", value_deserializer="bytes", config=config)
        for name in event_types
    ]
    for topic in topics:  # what the broker reports lacks the retention settings
        if topic.broker_config is not None:
            topic.broker_config.extra_config.update(RETENTION)
    outputs = app.topic(
        f"bench-quix-outputs-{uuid.uuid4().hex[:8]}",
        key_serializer="bytes",
        value_serializer="bytes",
        config=config,
    )

    def step(value: bytes, key: Any, timestamp: int, headers: Any, state: State) -> list[bytes]:
        topic = message_context().topic
        stored = state.get("user")
        done = fold(value, key, event_types[topic], stored.encode() if stored else None)
        records: list[bytes] = []
        if done is not None:
            blob, records = done
            state.set("user", blob.decode())
        if clock.tick(len(records)):
            clock.write(args.result)
            app.stop()
        return records

    frames = [app.dataframe(topic) for topic in topics]
    merged = frames[0]
    for frame in frames[1:]:
        merged = merged.concat(frame)
    merged = merged.apply(step, stateful=True, expand=True, metadata=True)
    merged.to_topic(outputs)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", required=True)
    parser.add_argument("--partitions", type=int, required=True)
    parser.add_argument("--total", type=int, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True, help="the state directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    app: Any = build(args, Clock(args.total))
    app.run()


if __name__ == "__main__":
    main()
