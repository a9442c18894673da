"""The consuming service: clients, the rebalance listener and the batch loop's life.

Started and stopped by the Faust worker like any other service. Stopping lets the batch
in hand finish (its outputs acknowledged, its offsets committed) before the consumer
leaves the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Any

from aiokafka import ConsumerRebalanceListener
from aiokafka.errors import ConsumerStoppedError
from mode import Service

from workers.core.policy import Policy
from workers.metrics import Metrics
from workers.settings import Settings
from workers.stream.assignor import CopartitionedAssignor
from workers.stream.clients import input_consumer, output_producer, restore_consumer
from workers.stream.processor import Processor

log = logging.getLogger(__name__)

_STOP_GRACE_SECONDS = 30.0


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, processor: Processor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: Any) -> None:
        await self.processor.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.processor.on_assigned(assigned)


class StreamService(Service):
    """Owns the Kafka clients and runs ``Processor.poll`` until stopped."""

    def __init__(self, settings: Settings, policy: Policy, metrics: Metrics, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings = settings
        self.policy = policy
        self.metrics = metrics
        self.processor: Processor | None = None
        self.assignor = CopartitionedAssignor(settings.advertised_url(), self._held)
        self.failure: BaseException | None = None
        self._clients: list[Any] = []
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    def _held(self) -> list[int]:
        return sorted(self.processor.partitions) if self.processor else []

    @property
    def ready(self) -> bool:
        return self.processor is not None and self.processor.ready and not self._stopping

    async def on_start(self) -> None:
        settings = self.settings
        producer = output_producer(settings)
        restorer = restore_consumer(settings)
        consumer = input_consumer(settings, self.assignor)
        for client in (producer, restorer, consumer):
            await client.start()
            self._clients.append(client)
        self.processor = Processor(
            settings, self.policy, self.metrics, consumer, producer, restorer
        )
        consumer.subscribe(list(settings.topics.inputs()), listener=_Listener(self.processor))
        self._loop_task = asyncio.create_task(self._run(), name="lineguard-batches")
        log.info(
            "worker started",
            extra={"group_id": settings.group_id, "clock": settings.clock, "store": settings.store},
        )

    async def _run(self) -> None:
        assert self.processor is not None
        try:
            while not self._stopping:
                await self.processor.poll()
        except ConsumerStoppedError:
            return
        except Exception as exc:
            # An output or changelog write that cannot be acknowledged: stop without
            # committing, so the inputs are read again after a restart.
            self.failure = exc
            log.exception("the batch loop failed; stopping the worker")
            os.kill(os.getpid(), signal.SIGTERM)

    async def tick(self) -> None:
        if self.processor is not None and not self._stopping:
            await self.processor.tick()

    async def on_stop(self) -> None:
        self._stopping = True
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._loop_task, _STOP_GRACE_SECONDS)
        self.metrics.ready.set(0)
        for client in reversed(self._clients):
            with contextlib.suppress(Exception):
                await client.stop()
        self._clients.clear()
        if self.processor is not None:
            for part in self.processor.partitions.values():
                part.store.close()
        log.info("worker stopped")
