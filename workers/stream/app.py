"""The Faust application as the worker's frame: web server, timer, lifecycle and signals.

Faust's own consumer, producer and tables stay off (its per-event scheduling caps it near
15,000 events/s here); the hot path is ``StreamService``. Faust serves:

- ``GET /metrics``: Prometheus text format.
- ``GET /healthz``: 200 while the process runs.
- ``GET /readyz``: 200 once the assigned partitions are restored, 503 while restoring
  or rebalancing, while the brokers stall, and once the group's workers have run different
  live policies for too long; the body names the policies this worker runs.
- ``GET /users/{user_id}``: the user's status for holders of the status token
  (``workers/stream/status.py``), answered by the owner of the user's partition.

Faust's own pages that describe the app's internals (``/router``, ``/table``, ``/graph``,
``/stats``, ``/assignment``, ``/performance``) are off; only its index ``/`` remains, which
answers ``{"status": "OK"}``.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from prometheus_client import generate_latest

from workers.settings import Settings
from workers.stream.clients import broker_credentials
from workers.stream.service import StreamService
from workers.stream.status import add_status_page

log = logging.getLogger(__name__)

_JSON = "application/json"
_PROMETHEUS = "text/plain; version=0.0.4"  # aiohttp adds the charset itself


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
        web_router_enabled=False,
        web_tables_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
        web_metrics_enabled=False,
        broker_credentials=broker_credentials(settings),
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
            "policy": service.policies_run(),
        }
        return reply(view, body, 200 if reason is None else 503)

    add_status_page(app, settings, service)

    @app.timer(interval=settings.tick_interval_seconds)  # type: ignore[untyped-decorator]
    async def deadlines() -> None:
        await service.tick()

    return app
