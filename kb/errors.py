"""One error tree. Each class carries its HTTP status, a stable `code` and a CLI exit code.

```
KBError                     500  internal_error         exit 1
├── ConfigError             500  config_error           exit 2   a setting is wrong
│   └── ModelMismatch       409  model_mismatch         exit 2   index built with another model
├── ClientError             4xx  (base only)            exit 1   the caller can fix the request
│   ├── InvalidInput        400  invalid_request        exit 2
│   ├── Unauthorized        401  unauthorized           exit 1   kb's own API key check only
│   ├── Forbidden           403  forbidden              exit 1   a write from another origin
│   ├── NotFound            404  not_found              exit 1   a kb document or file
│   ├── RequestTimeout      408  request_timeout        exit 1   a request body too slow
│   ├── Conflict            409  conflict               exit 1
│   ├── TooLarge            413  too_large              exit 1   over kb's own limits
│   ├── UnsupportedType     415  unsupported_type       exit 1
│   ├── ExtractionError     422  extraction_failed      exit 1
│   └── ClientDisconnected  499  client_disconnected    exit 1   the client left mid-request
└── UpstreamError           502  upstream_error         exit 1   Anthropic or Chroma failed
    ├── UpstreamAuthError   502  upstream_auth_error    exit 2   Anthropic refused kb's key
    ├── UpstreamRejected    502  upstream_rejected      exit 1   Anthropic refused a request
    ├── UpstreamNotFound    502  upstream_not_found     exit 1   Anthropic has no such file/model
    ├── RateLimited         429  rate_limited           exit 1   Anthropic busy: retry later
    ├── Unavailable         503  unavailable            exit 1   Chroma cannot be reached
    └── UpstreamTimeout     504  upstream_timeout       exit 1
```

A client error is about the request kb was given: the caller can fix it. An upstream error
is a service behind kb failing or refusing what kb sent; it is never reported as the caller's
401 or 400 (Anthropic rejecting kb's key is not the caller's bad key). The one 4xx among them,
`RateLimited`, tells the caller to come back later. Anthropic's SDK errors become these classes
in `kb.anthropic.errors.to_kb_error`.

The API maps any `KBError` to `{"error": {"type": code, "message": ...}}` with `status`
(only `Unauthorized` adds `WWW-Authenticate`); the CLI prints `kb: <message>` and exits with
`exit_code`.
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


class ModelMismatch(ConfigError):
    """The collection was built with another embedding model or dimension."""

    status = 409
    code = "model_mismatch"
    exit_code = 2


# -- the caller's request ------------------------------------------------------------------


class ClientError(KBError):
    """Something about the request or its input: the caller can fix it (4xx)."""

    status = 400
    code = "client_error"


class InvalidInput(ClientError):
    status = 400
    code = "invalid_request"
    exit_code = 2


class Unauthorized(ClientError):
    """The caller presented no valid kb API key. Never used for Anthropic's answer about
    kb's own key: that is `UpstreamAuthError`."""

    status = 401
    code = "unauthorized"


class Forbidden(ClientError):
    """A request the server will not serve for who sent it: a browser write from another
    origin."""

    status = 403
    code = "forbidden"


class NotFound(ClientError):
    status = 404
    code = "not_found"


class RequestTimeout(ClientError):
    """A request body that did not arrive in time, or arrived too slowly."""

    status = 408
    code = "request_timeout"


class Conflict(ClientError):
    status = 409
    code = "conflict"


class TooLarge(ClientError):
    status = 413
    code = "too_large"


class UnsupportedType(ClientError):
    status = 415
    code = "unsupported_type"


class ExtractionError(ClientError):
    """A file could not be read. `reason` is the short status text, e.g. `encrypted`."""

    status = 422
    code = "extraction_failed"

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason = reason


class ClientDisconnected(ClientError):
    """The client went away before its request was read: nobody reads the answer, so this is
    logged as a disconnect, never as a server error (499, as nginx counts it)."""

    status = 499
    code = "client_disconnected"


# -- a service behind kb -------------------------------------------------------------------


class UpstreamError(KBError):
    """Anthropic (or a Chroma server) answered with an error we cannot fix here."""

    status = 502
    code = "upstream_error"


class UpstreamAuthError(UpstreamError):
    """Anthropic rejected kb's API key, or the key may not do this (401, 402, 403): the
    operator has to fix ANTHROPIC_API_KEY or the account."""

    status = 502
    code = "upstream_auth_error"
    exit_code = 2


class UpstreamRejected(UpstreamError):
    """Anthropic refused a request kb built (400, 413, storage quota, other 4xx), e.g. an
    unknown KB_CLAUDE_MODEL or a file it will not store. Ingest records it as that file's
    failure."""

    status = 502
    code = "upstream_rejected"


class UpstreamNotFound(UpstreamError):
    """Anthropic answered 404: a file (even after re-uploading it) or a model it does not
    have. Not the caller's 404: what the caller asked for exists in kb."""

    status = 502
    code = "upstream_not_found"


class RateLimited(UpstreamError):
    """Anthropic is rate limiting or overloaded after the SDK's retries; `hint` says when
    to retry. A 429, so that the caller backs off."""

    status = 429
    code = "rate_limited"


class Unavailable(UpstreamError):
    status = 503
    code = "unavailable"


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"
