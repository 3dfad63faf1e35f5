"""Process-wide logging: every record carries the request id of the call it belongs to.

`log_format = "text"` (default): one line, `... request_id=<id> logger: message`;
`"json"`: one JSON object per line (ts, level, logger, pid, request_id, msg, and the
traceback as `exc`), for log shippers. The request id comes from the interceptor's
context variable, so a log line written anywhere below a handler carries it; lines
from background threads (reload, refresh) have an empty one.
"""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from recsvc.interceptors import request_id

TEXT_FORMAT = "%(asctime)s %(process)d %(levelname)s request_id=%(request_id)s %(name)s: %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "pid": record.process,
               "request_id": getattr(record, "request_id", "-"), "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def make_handler(log_format: str, stream=None) -> logging.Handler:
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    return handler


def configure(level: str, log_format: str, stream=None) -> logging.Handler:
    """Replace the root logger's handlers with one that writes `log_format` lines."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = make_handler(log_format, stream)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
