"""The Faust application as the worker's frame: web server, timer, lifecycle and signals.

Faust's own consumer, producer and tables stay off (its per-event scheduling caps it near
15,000 events/s here); the hot path is ``StreamService``. Faust serves:

- ``GET /metrics``: Prometheus text format.
- ``GET /healthz``: 200 while the process runs.
- ``GET /readyz``: 200 once the assigned partitions are restored, 503 while restoring
  or rebalancing.
- ``GET /users/{user_id}``: the user's status, answered by the owner of the user's
  partition (requests to another worker are forwarded to it).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from prometheus_client import generate_latest

from workers.settings import Settings
from workers.stream.routing import partition_for
from workers.stream.service import StreamService

log = logging.getLogger(__name__)

_JSON = "application/json"
_PROMETHEUS = "text/plain; version=0.0.4"  # aiohttp adds the charset itself
_FORWARD_TIMEOUT_SECONDS = 5.0


def build_app(settings: Settings, service: StreamService) -> Any:
    """A ``faust.App`` with the web routes and the deadline timer; Kafka parts left off."""
    import faust

    app = faust.App(
        settings.group_id,
        broker=f"kafka://{settings.brokers[0]}",
        autodiscover=False,
        datadir=str(settings.data_dir / "frame"),
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
    )
    app.boot_strategy = app.BootStrategy(app, enable_kafka=False, enable_sensors=False)
    metrics = service.metrics

    def reply(view: Any, body: Any, status: int = 200) -> Any:
        return view.bytes(orjson.dumps(body), content_type=_JSON, status=status)

    @app.page("/metrics")
    async def metrics_page(view: Any, request: Any) -> Any:
        return view.bytes(generate_latest(metrics.registry), content_type=_PROMETHEUS)

    @app.page("/healthz")
    async def health(view: Any, request: Any) -> Any:
        return reply(view, {"status": "alive"})

    @app.page("/readyz")
    async def readiness(view: Any, request: Any) -> Any:
        processor = service.processor
        reason = service.not_ready_reason()
        body = {
            "ready": reason is None,
            "reason": reason,
            "partitions": sorted(processor.partitions) if processor else [],
        }
        return reply(view, body, 200 if reason is None else 503)

    @app.page("/users/{user_id}")
    async def user_status(view: Any, request: Any, user_id: str) -> Any:
        status, body = await answer_status(settings, service, user_id, request.query)
        return reply(view, body, status)

    @app.timer(interval=settings.tick_interval_seconds)  # type: ignore[untyped-decorator]
    async def deadlines() -> None:
        await service.tick()

    return app


async def answer_status(
    settings: Settings, service: StreamService, user_id: str, query: Any
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) for ``GET /users/{user_id}``, forwarding to the owner if needed."""
    number = partition_for(user_id, settings.partitions, settings.partitioner)
    processor = service.processor
    part = processor.partitions.get(number) if processor else None
    if part is not None and service.ready:
        status = part.engine.status(user_id)
        if status is None:
            return 404, {"error": f"no state for user {user_id!r}", "partition": number}
        return 200, {**status, "partition": number, "served_by": settings.advertised_url()}
    owner = service.assignor.owners.get(number)
    if not owner or owner == settings.advertised_url() or query.get("forwarded"):
        return 503, {"error": f"partition {number} is being assigned or restored; retry soon"}
    return await forward(owner, user_id)


async def forward(owner: str, user_id: str) -> tuple[int, dict[str, Any]]:
    import aiohttp
    from yarl import URL

    url = URL(owner) / "users" / user_id
    timeout = aiohttp.ClientTimeout(total=_FORWARD_TIMEOUT_SECONDS)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(url.with_query(forwarded="1")) as response,
        ):
            body = await response.json(content_type=None)
            return response.status, body if isinstance(body, dict) else {"answer": body}
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("forwarding a status request to %s failed: %s", owner, exc)
        return 502, {"error": f"the owner of this user's partition ({owner}) did not answer"}
