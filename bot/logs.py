"""Logging: JSON lines for log collectors, readable lines on a terminal, and the operation.

In a pod, stderr goes to a log collector that wants one JSON object per line (time,
level, logger, message, and the traceback in `exc`); on a terminal a person wants the
classic one-line format. Either way, every line written while an operation is being
worked on carries its name (the Backup's name, the restore record's id) so an operator
can `grep`/filter one operation's whole story out of interleaved threads. The name lives
in a contextvar (set with `operation(name)`), and a `logging.Filter` on the handler copies
it onto each record, so no call site has to pass it.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, Any

_operation: contextvars.ContextVar[str] = contextvars.ContextVar("ragbot_operation", default="")

HUMAN_FORMAT = "%(asctime)s %(levelname)s %(name)s%(op)s: %(message)s"


@contextlib.contextmanager
def operation(name: str) -> Iterator[None]:
    """Tag every log line of this thread (or task) with `name` until the block ends."""
    token = _operation.set(name)
    try:
        yield
    finally:
        _operation.reset(token)


def current_operation() -> str:
    return _operation.get()


class OperationFilter(logging.Filter):
    """Copies the current operation onto each record (`record.operation`, "" if none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "operation", ""):
            record.operation = _operation.get()
        op = record.operation
        record.op = f" [{op}]" if op else ""
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, operation, exc."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        op = getattr(record, "operation", "")
        if op:
            doc["operation"] = op
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            doc["exc"] = record.exc_text
        return json.dumps(doc, ensure_ascii=False, default=str)


def _is_terminal(stream: IO[str]) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):
        return False


def configure_logging(verbose: bool = False, stream: IO[str] | None = None, *,
                      json_lines: bool | None = None) -> logging.Handler:  # fmt: skip
    """Replace the root logger's handlers with one on `stream` (stderr by default).

    JSON unless the stream is a terminal (`json_lines` forces either). Verbose: DEBUG;
    otherwise WARNING, as before (CLI commands keep stderr to their one error line), and
    urllib3 only at ERROR (it logs each connection retry as a WARNING; the failure itself
    is reported once by ragbot). `ragbot serve` may raise "ragbot" to INFO.
    """
    out = stream if stream is not None else sys.stderr
    handler = logging.StreamHandler(out)
    handler.addFilter(OperationFilter())
    use_json = not _is_terminal(out) if json_lines is None else json_lines
    handler.setFormatter(JsonFormatter() if use_json else logging.Formatter(HUMAN_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    if not verbose:
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    return handler


__all__ = [
    "JsonFormatter",
    "OperationFilter",
    "configure_logging",
    "current_operation",
    "operation",
]
