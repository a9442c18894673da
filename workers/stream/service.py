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
from workers.stream.group_policies import GroupPolicies
from workers.stream.policy_feed import PolicyFeed, starting_policy
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
        self.policies: PolicyFeed | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False
        self.group = GroupPolicies(settings.policy_disagreement_seconds)

    def _held(self) -> list[int]:
        return sorted(self.processor.partitions) if self.processor else []

    @property
    def ready(self) -> bool:
        return self.not_ready_reason() is None

    def not_ready_reason(self) -> str | None:
        """Why ``/readyz`` fails, or None when the worker is processing."""
        if self._stopping:
            return "stopping"
        if self.processor is None or not self.processor.ready:
            return "partitions are being assigned or restored"
        return self.processor.stalled() or self.group.reason(self.processor.parts.policy.version)

    def policies_run(self) -> dict[str, str | None]:
        """The live and challenger policy versions this worker runs."""
        parts = self.processor.parts if self.processor is not None else None
        live = parts.policy.version if parts is not None else self.policy.version
        challenger = parts.challenger if parts is not None else None
        return {"live": live, "challenger": None if challenger is None else challenger.version}

    async def on_start(self) -> None:
        settings = self.settings
        producer = output_producer(settings)
        restorer = restore_consumer(settings)
        consumer = input_consumer(settings, self.assignor)
        for client in (producer, restorer, consumer):
            await client.start()
            self._clients.append(client)
        if settings.follow_policies:
            self.policies = PolicyFeed(settings, self.metrics)
        self.processor = Processor(
            settings,
            self.policy,
            self.metrics,
            consumer,
            producer,
            restorer,
            policies=self.policies,
        )
        # Join the group first (a static member's restart races its session), then read the
        # published policies while the join goes on: no batch runs before the loop starts.
        consumer.subscribe(list(settings.topics.consumed()), listener=_Listener(self.processor))
        if self.policies is not None:
            await self.policies.start()
            live = self.policies.live
            if live is not None and live.policy != self.policy:
                log.warning(
                    "running the published live policy %s instead of the policy file's %s",
                    live.policy.version,
                    self.policy.version,
                    extra={"policy_offset": live.offset},
                )
            self.policy = starting_policy(self.policies, self.policy)
            challenger = self.policies.challenger
            self.processor.start_with(
                self.policy, None if challenger is None else challenger.policy
            )
        self._loop_task = asyncio.create_task(self._run(), name="lineguard-batches")
        log.info(
            "worker started",
            extra={"group_id": settings.group_id, "clock": settings.clock, "store": settings.store},
        )

    async def _run(self) -> None:
        """Poll until stopped. A failed batch has been rolled back; retry it with back-off
        (1 s doubling to 30 s) and stop the worker after too many failures in a row."""
        processor = self.processor
        assert processor is not None
        failures = 0
        while not self._stopping:
            try:
                await processor.poll()
                failures = 0
            except ConsumerStoppedError:
                return
            except Exception as exc:
                failures += 1
                if failures >= self.settings.max_consecutive_failures:
                    self.failure = exc
                    log.exception("%d batches failed in a row; stopping the worker", failures)
                    os.kill(os.getpid(), signal.SIGTERM)
                    return
                pause = min(30.0, 2.0 ** (failures - 1))
                log.warning(
                    "a batch failed and was rolled back (%s: %s); retrying in %.0f s",
                    type(exc).__name__,
                    exc,
                    pause,
                    extra={"consecutive_failures": failures},
                )
                await asyncio.sleep(pause)

    async def tick(self) -> None:
        """The timer: gauges only (deadlines fire in the batch loop, which owns the state)."""
        if self.processor is not None and not self._stopping:
            try:
                self.processor.refresh_gauges(self.processor.clock())
            except Exception:  # gauges are best effort: a failure here must not stop the app
                log.exception("refreshing the gauges failed")
            if self.group.due():
                me = self.settings.advertised_url()
                others = [url for url in self.assignor.owners.values() if url and url != me]
                await self.group.ask(self.processor.parts.policy.version, others)

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
        if self.policies is not None:
            with contextlib.suppress(Exception):
                await self.policies.stop()
        if self.processor is not None:
            self.processor.parts.close()
        log.info("worker stopped")
