"""bot.logs: JSON lines off a terminal, human lines on one, the operation on every line."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator

import pytest

from bot.logs import configure_logging, current_operation, operation


@pytest.fixture(autouse=True)
def _restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in handlers:
        root.addHandler(h)
    root.setLevel(level)


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_operation_of_the_block() -> None:
    out = io.StringIO()
    configure_logging(verbose=True, stream=out)
    log = logging.getLogger("ragbot.reconciler")
    log.info("before")
    with operation("ragbot-20260101-020000"):
        log.info("phase %s", "InProgress")
        with operation("rr-7f3a"):
            log.warning("nested")
        log.info("after the nested one")
    log.info("outside")
    got = lines(out)
    assert [g["message"] for g in got] == ["before", "phase InProgress", "nested",
                                           "after the nested one", "outside"]  # fmt: skip
    assert [g.get("operation") for g in got] == [None, "ragbot-20260101-020000", "rr-7f3a",
                                                 "ragbot-20260101-020000", None]  # fmt: skip
    first = got[1]
    assert first["level"] == "INFO" and first["logger"] == "ragbot.reconciler"
    assert str(first["time"]).endswith("+00:00")


def test_exceptions_go_into_exc_and_threads_keep_their_own_operation() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    log = logging.getLogger("ragbot.test")
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        with operation(name):
            barrier.wait(5)
            try:
                raise RuntimeError(f"boom in {name}")
            except RuntimeError:
                log.exception("failed")

    threads = [threading.Thread(target=work, args=(n,)) for n in ("backup-a", "backup-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    got = lines(out)
    assert len(got) == 2
    for g in got:
        assert g["level"] == "ERROR"
        assert "Traceback" in str(g["exc"]) and f"boom in {g['operation']}" in str(g["exc"])
    assert {g["operation"] for g in got} == {"backup-a", "backup-b"}
    assert current_operation() == ""


def test_a_terminal_gets_the_human_format_and_quiet_libraries() -> None:
    out = Tty()
    configure_logging(verbose=False, stream=out)
    with operation("rr-1"):
        logging.getLogger("ragbot.x").warning("hello")
    logging.getLogger("ragbot.x").info("not shown without -v")
    logging.getLogger("urllib3").warning("retrying")
    text = out.getvalue()
    assert "WARNING ragbot.x [rr-1]: hello" in text
    assert "not shown" not in text and "retrying" not in text
    assert not text.lstrip().startswith("{")
