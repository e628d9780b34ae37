"""Log records as one JSON object per line (`BICES_LOG_FORMAT=json`), for log shippers.

Each line holds `ts` (UTC, ISO 8601), `level`, `logger`, `msg`, the process id, and for
the server's access log `client`, `method`, `path`, `status`; an exception's traceback
goes in `exc`. Plain text stays the default, for people at a terminal.
"""

from __future__ import annotations

import json
import logging
import logging.config
import os
from datetime import UTC, datetime
from typing import Any

ACCESS_FIELDS = ("client", "method", "path", "http_version", "status")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": os.getpid(),
        }
        if (
            record.name == "uvicorn.access"
            and isinstance(record.args, tuple)
            and len(record.args) == len(ACCESS_FIELDS)
        ):
            line.update(zip(ACCESS_FIELDS, record.args, strict=True))
            line["msg"] = "request"
        else:
            line["msg"] = record.getMessage()
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def uvicorn_config(log_format: str, level: str = "info") -> dict[str, Any] | None:
    """A `logging.config.dictConfig` for uvicorn and bices under the chosen format; None
    keeps uvicorn's own (text)."""
    if log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json",
               "stream": "ext://sys.stderr"}  # fmt: skip
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "loggers": {
            name: {"handlers": ["default"], "level": level.upper(), "propagate": False}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "bices")
        },
    }


def configure(log_format: str, level: str = "info") -> None:
    """Set up the `bices` loggers of a command (servers pass `uvicorn_config` too)."""
    config = uvicorn_config(log_format, level)
    if config is not None:
        logging.config.dictConfig(config)
