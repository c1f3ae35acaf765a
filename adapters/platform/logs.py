"""Logging set-up: readable lines by default, JSON lines on request; secrets redacted."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys

# The id of the HTTP request being served (set by the API's RequestIdMiddleware).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Anything that looks like a credential in a log line is masked before it is written.
# Each pattern keeps its group 1 (the name) and masks group 2 (the value).
_KEYS = (r"password|passwd|secret|secretKey|secret_key|api_?key|apiKey|token|refreshToken|"
         r"signature|tl_access|tl_refresh|master_keys|jwt_secret|authorization")
_SECRET_PATTERNS = [
    re.compile(r"(?i)(bearer\s+)([A-Za-z0-9._~+/=-]+)"),
    re.compile(r"(?i)(basic\s+)([A-Za-z0-9+/=]{4,})"),
    # key=value, key: value, "key": "value", 'key': 'value' (quotes optional, any case)
    re.compile(rf"(?i)((?:{_KEYS})['\"]?\s*[:=]\s*['\"]?)([^'\"&\s,;}}]+)"),
    # user:password@ in URLs (database, broker, proxies)
    re.compile(r"([a-z][a-z0-9+.-]*://[^:/@\s]*:)([^@\s]+)(@)"),
]


def redact(text: str) -> str:
    """Mask credential-looking values in a string."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + "***" + (m.group(3) if m.lastindex == 3
                                                           else ""), text)
    return text


class RequestIdFilter(logging.Filter):
    """Put the current request id on every record logged while serving a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        current = request_id.get()
        if current is not None and not hasattr(record, "request_id"):
            record.request_id = current
        return True


class RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        # Masked field by field BEFORE serialising: json.dumps escapes quotes, after which
        # a pattern can no longer see where `"secretKey": "..."` ends.
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in ("request_id", "component"):
            if hasattr(record, key):
                entry[key] = redact(str(getattr(record, key)))
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry)


def setup_logging(level: str = "INFO", as_json: bool = False) -> None:
    """Install one handler on the root logger."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if as_json
        else RedactingFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
    )
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("kafka", "urllib3", "asyncio", "websockets", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
