"""Log lines for the daemons: plain text for a terminal and journald (the default), or
one JSON object per line (`--log-format json`) for a log shipper.

Every message that quotes the wire (names, addresses) is already escaped by the
code that logs it; JSON encoding escapes whatever control characters remain.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    def __init__(self, program: str) -> None:
        super().__init__()
        self.program = program

    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(
                     timespec="milliseconds"),
                 "program": self.program, "level": record.levelname.lower(),
                 "logger": record.name, "message": record.getMessage()}
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(program: str, log_format: str = "text", text_format: str = "") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(program) if log_format == "json" else
                         logging.Formatter(text_format or f"{program}: %(levelname)s: "
                                                          "%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
