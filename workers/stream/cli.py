"""``lineguard worker``: run the streaming worker against any Kafka-protocol broker.

Settings come from ``LINEGUARD_*`` variables (see ``workers.settings``); the options here
override the most common ones. Exit codes: 0 after a clean stop, 1 when the batch loop
failed, 2 for invalid settings or policy, 3 when the brokers cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from workers.errors import LineguardError, PolicyError
from workers.settings import Settings

log = logging.getLogger("lineguard.worker")

_OPTIONS: dict[str, tuple[str, Any, str]] = {
    # option: (settings field, type, help)
    "--brokers": ("brokers", str, "bootstrap servers, comma separated"),
    "--group-id": ("group_id", str, "consumer group (and state directory name)"),
    "--partitions": ("partitions", int, "partition count of every topic"),
    "--clock": ("clock", str, "wall (production) or event (replaying history)"),
    "--store": ("store", str, "memory or rocksdb"),
    "--data-dir": ("data_dir", Path, "directory of the rocksdb stores"),
    "--policy": ("policy_file", Path, "policy TOML file (default: packaged policy)"),
    "--web-host": ("web_host", str, "address the web server binds"),
    "--web-port": ("web_port", int, "port of /metrics, /healthz, /readyz, /users/{id}"),
    "--log-format": ("log_format", str, "json or text"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    for option, (field, kind, help_text) in _OPTIONS.items():
        parser.add_argument(option, dest=field, type=kind, default=None, help=help_text)


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment's settings with the command line's options on top."""
    overrides = {
        field: getattr(args, field)
        for field, _, _ in _OPTIONS.values()
        if getattr(args, field, None) is not None
    }
    return Settings(**overrides)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ValidationError as exc:
        print(f"lineguard worker: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    from workers.stream.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    from workers.core.policy import load_policy

    try:
        policy = load_policy(settings.policy_file)
    except PolicyError as exc:
        print(f"lineguard worker: invalid policy: {exc}", file=sys.stderr)
        return 2
    from workers.stream.clients import prepare_topics

    try:
        asyncio.run(prepare_topics(settings))
    except LineguardError as exc:
        print(f"lineguard worker: {exc}", file=sys.stderr)
        return 3
    log.info("starting", extra={"settings": settings.summary(), "policy": policy.version})
    return serve(settings, policy)


def serve(settings: Settings, policy: Any) -> int:
    """Run the Faust worker with the streaming service until SIGTERM or SIGINT."""
    import faust

    from workers.cli import version
    from workers.metrics import Metrics
    from workers.stream.app import build_app
    from workers.stream.service import StreamService

    (settings.data_dir / "frame").mkdir(parents=True, exist_ok=True)
    asyncio.set_event_loop(asyncio.new_event_loop())
    metrics = Metrics()
    metrics.set_build(version(), policy.version)
    service = StreamService(settings, policy, metrics)
    app = build_app(settings, service)
    worker = faust.Worker(
        app,
        service,
        quiet=True,
        loglevel=settings.log_level,
        override_logging=False,
        redirect_stdouts=False,
    )
    worker.spinner = None  # its terminal codes would corrupt JSON logs
    code: int = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    if service.failure is not None:
        print(f"lineguard worker: stopped after a failure: {service.failure}", file=sys.stderr)
        return 1
    return code
