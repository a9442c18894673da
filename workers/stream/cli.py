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
import textwrap
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError

from workers.errors import LineguardError
from workers.problems import settings_problem
from workers.settings import Settings

log = logging.getLogger("lineguard.worker")

_OPTIONS: dict[str, tuple[str, Any]] = {
    # option: (settings field, type); the help is the field's description
    "--brokers": ("brokers", str),
    "--group-id": ("group_id", str),
    "--partitions": ("partitions", int),
    "--clock": ("clock", str),
    "--store": ("store", str),
    "--data-dir": ("data_dir", Path),
    "--policy": ("policy_file", Path),
    "--web-host": ("web_host", str),
    "--web-port": ("web_port", int),
    "--log-format": ("log_format", str),
}


def configure(parser: argparse.ArgumentParser) -> None:
    for option, (field, kind) in _OPTIONS.items():
        info = Settings.model_fields[field]
        choices = get_args(info.annotation) if get_origin(info.annotation) is Literal else None
        help_text = (info.description or "").rstrip(".")
        help_text += f" (default {_shown(info.default)}; env {env_name(field)})"
        parser.add_argument(
            option,
            dest=field,
            type=kind,
            default=None,
            choices=choices,
            help=help_text.replace("%", "%%"),
        )
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = environment_help()


def env_name(*path: str) -> str:
    return "LINEGUARD_" + "__".join(part.upper() for part in path)


def _shown(default: Any) -> str:
    if isinstance(default, list | tuple):
        return ",".join(str(item) for item in default)
    return "(unset)" if default is None else str(default)


def environment_help() -> str:
    """Every setting the worker reads, generated from ``Settings``: name, default, meaning."""
    rows: list[tuple[str, str, str]] = []
    for name, info in Settings.model_fields.items():
        nested = info.annotation
        if isinstance(nested, type) and issubclass(nested, BaseModel):
            rows.append((env_name(name) + "__*", "", info.description or ""))
            for sub, sub_info in nested.model_fields.items():
                shown = _shown(sub_info.default)
                rows.append((env_name(name, sub), shown, sub_info.description or ""))
        else:
            rows.append((env_name(name), _shown(info.default), info.description or ""))
    lines = ["environment settings (the options above override them):"]
    for env, default, text in rows:
        lines.append(f"  {env}={default}" if default else f"  {env}")
        if text:
            lines += textwrap.wrap(text, 78, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return "\n".join(lines)


_NAMES = {field: f"{option} ({env_name(field)})" for option, (field, _) in _OPTIONS.items()} | {
    field: env_name(field) for field in Settings.model_fields if field not in _OPTIONS
}


def settings_from(args: argparse.Namespace) -> Settings:
    """The environment's settings with the command line's options on top."""
    overrides = {
        field: getattr(args, field)
        for field, _ in _OPTIONS.values()
        if getattr(args, field, None) is not None
    }
    return Settings(**overrides)


def run(args: argparse.Namespace) -> int:
    try:
        settings = settings_from(args)
    except ValidationError as exc:
        raise settings_problem(exc, _NAMES) from exc
    from workers.stream.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    from workers.core.policy import load_policy

    policy = load_policy(settings.policy_file)  # a PolicyError: exit 2
    from workers.stream.clients import prepare_topics

    try:
        asyncio.run(prepare_topics(settings))
    except LineguardError as exc:
        print(f"lineguard worker: {exc}", file=sys.stderr)
        return 3
    log.info("starting", extra={"settings": settings.summary(), "policy": policy.version})
    if settings.status_token is None:
        log.warning(
            "the status API is off: GET /users/{user_id} answers 403 until "
            "LINEGUARD_STATUS_TOKEN is set; /healthz, /readyz and /metrics are served"
        )
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
