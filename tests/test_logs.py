"""Structured logs: one JSON object per line when BICES_LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from bices.logs import JsonFormatter, uvicorn_config
from bices.settings import Settings


def record(
    name: str, msg: str, args: tuple[object, ...] = (), exc: bool = False
) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("broken input")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, info)


def test_a_line_is_one_json_object() -> None:
    line = JsonFormatter().format(record("bices.pipeline", "stored %d reports", (3,), exc=True))
    found = json.loads(line)
    assert found["msg"] == "stored 3 reports" and found["level"] == "warning"
    assert found["logger"] == "bices.pipeline" and found["ts"].endswith("Z")
    assert "ValueError: broken input" in found["exc"] and "\n" not in line


def test_access_log_fields() -> None:
    access = record("uvicorn.access", '%s - "%s %s HTTP/%s" %d',
                    ("127.0.0.1:5000", "GET", "/api/v1/search?q=x", "1.1", 200))  # fmt: skip
    found = json.loads(JsonFormatter().format(access))
    assert (found["client"], found["method"], found["path"], found["status"]) == (
        "127.0.0.1:5000", "GET", "/api/v1/search?q=x", 200)  # fmt: skip


def test_the_setting_chooses_the_format(monkeypatch: pytest.MonkeyPatch) -> None:
    assert uvicorn_config("text") is None
    config = uvicorn_config("json")
    assert config is not None and "uvicorn.access" in config["loggers"]
    monkeypatch.setenv("BICES_LOG_FORMAT", "yaml")
    with pytest.raises(ValueError, match="log_format"):
        Settings()
