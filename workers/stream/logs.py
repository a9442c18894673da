"""Structured logs: one JSON object per line when the settings ask for it, plain text else."""

from __future__ import annotations

import logging
import logging.config
from datetime import UTC, datetime
from typing import Any

import orjson

_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """``{"at", "level", "logger", "message", ...extra fields, "error"}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class BadRequestFilter(logging.Filter):
    """A malformed HTTP request (a request line over 8 KB, a broken header) is the client's
    fault: one warning line without the traceback aiohttp's server attaches to it."""

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import BadHttpMessage

        if record.exc_info and isinstance(record.exc_info[1], BadHttpMessage):
            record.msg, record.args = "refused a malformed HTTP request: %s", (record.exc_info[1],)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


def configure_logging(log_format: str, level: str) -> None:
    """Root logging to stderr, JSON or text; quiets the chattiest library loggers."""
    formatter: dict[str, Any] = (
        {"()": JsonFormatter}
        if log_format == "json"
        else {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"}
    )
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"main": formatter},
            "filters": {"bad_request": {"()": BadRequestFilter}},
            "handlers": {
                "stderr": {
                    "class": "logging.StreamHandler",
                    "formatter": "main",
                    "stream": "ext://sys.stderr",
                }
            },
            "root": {"handlers": ["stderr"], "level": level},
            "loggers": {
                "aiokafka": {"level": "WARNING"},
                # joins, generations and revocations: one line each per rebalance
                "aiokafka.consumer.group_coordinator": {"level": "INFO"},
                "faust": {"level": "WARNING"},
                "mode": {"level": "WARNING"},
                "aiohttp.access": {"level": "WARNING"},
                "aiohttp.server": {"filters": ["bad_request"]},
            },
        }
    )
