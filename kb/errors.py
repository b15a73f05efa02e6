"""One error tree. Each class carries its HTTP status and a stable `code`.

The API maps any `KBError` to `{"error": {"type": code, "message": ...}}` with `status`;
the CLI prints `kb: <message>` and exits with `exit_code`.
"""

from __future__ import annotations


class KBError(Exception):
    status: int = 500
    code: str = "internal_error"
    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(KBError):
    status = 500
    code = "config_error"
    exit_code = 2


class InvalidInput(KBError):
    status = 400
    code = "invalid_request"
    exit_code = 2


class Unauthorized(KBError):
    status = 401
    code = "unauthorized"


class NotFound(KBError):
    status = 404
    code = "not_found"


class Conflict(KBError):
    status = 409
    code = "conflict"


class TooLarge(KBError):
    status = 413
    code = "too_large"


class UnsupportedType(KBError):
    status = 415
    code = "unsupported_type"


class ModelMismatch(KBError):
    """The collection was built with another embedding model or dimension."""

    status = 409
    code = "model_mismatch"
    exit_code = 2


class ExtractionError(KBError):
    """A file could not be read. `reason` is the short status text, e.g. `encrypted`."""

    status = 422
    code = "extraction_failed"

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason


class RateLimited(KBError):
    status = 429
    code = "rate_limited"


class UpstreamError(KBError):
    """Anthropic (or a Chroma server) answered with an error we cannot fix here."""

    status = 502
    code = "upstream_error"


class UpstreamTimeout(KBError):
    status = 504
    code = "upstream_timeout"


class Unavailable(KBError):
    status = 503
    code = "unavailable"
