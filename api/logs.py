"""Logging for the server: one line per record, each carrying the request id, with control
characters in messages escaped."""

from __future__ import annotations

import logging

from api.errors import EscapingFormatter, RequestIdFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Send `kb.*` records to stderr with their request id (idempotent)."""
    logger = logging.getLogger("kb")
    if any(getattr(h, "_kb_api", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(EscapingFormatter(FORMAT))
    handler._kb_api = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False
