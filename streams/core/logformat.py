"""Log records as people and log collectors read them: text or one JSON object per line, with the noise of
the libraries underneath put at the level it deserves."""

from __future__ import annotations

import datetime
import logging
from typing import Any, Literal

import orjson

LogFormat = Literal["text", "json"]
TEXT_FORMAT = "[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s"

LIBRARIES = ("faust", "mode", "aiokafka")
"""Loggers whose INFO is bookkeeping (services starting and stopping, table recovery progress, group
membership): DEBUG here, so that INFO is what a person needs."""
SERVICE_PREFIX = "[^"
"""How Faust's services (some subclassed here, logging under this project's module names) begin a line."""
HARMLESS_AT_START = "GroupCoordinatorNotAvailable"
"""Kafka answers this while it elects a group coordinator; the client retries, so it is not an ERROR."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, ``pid``, and
    ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(document).decode()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Demote(logging.Filter):
    """Put library noise at its level: the INFO of Faust, mode and aiokafka at DEBUG, the coordinator
    election at start-up at INFO. A record demoted below ``threshold`` is not written."""

    def __init__(self, threshold: int) -> None:
        super().__init__()
        self.threshold = threshold

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.INFO and (
            record.name.startswith(LIBRARIES) or str(record.msg).startswith(SERVICE_PREFIX)
        ):
            _set_level(record, logging.DEBUG)
        elif record.levelno >= logging.WARNING and HARMLESS_AT_START in str(record.msg) + str(record.args):
            _set_level(record, logging.INFO)
        return record.levelno >= self.threshold


def _set_level(record: logging.LogRecord, level: int) -> None:
    record.levelno = level
    record.levelname = logging.getLevelName(level)


def formatter(log_format: LogFormat) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def dress_handlers(logger: logging.Logger, log_format: LogFormat, level: int) -> None:
    """Give the logger's handlers the format and the :class:`Demote` filter (after Faust set them up)."""
    for handler in logger.handlers:
        handler.setFormatter(formatter(log_format))
        handler.addFilter(Demote(level))


def configure(level: int | str, log_format: LogFormat) -> None:
    """Log to stderr at ``level`` in ``log_format`` (the services' commands; the worker uses Faust's setup)."""
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.handlers.clear()
    root.addHandler(handler)
    root.setLevel(numeric)
    dress_handlers(root, log_format, numeric)
