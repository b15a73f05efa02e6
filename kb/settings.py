"""Settings: one frozen object, read from `KB_*` variables (and `.env`) at the edge.

Nothing below this module reads `os.environ`; the object is passed down. Each field is declared
once below with its variable, parser, allowed values and description; the object is checked
whole when it is made (from the environment, directly or by `replace`), so a bad value is a
`ConfigError` naming its variable before any work starts. The README's settings table is
generated from these declarations (`scripts/settings_table.py`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from kb.errors import ConfigError
from kb.extraction import MAX_FILE_CHARS, MAX_PAGE_CHARS, Limits
from kb.pricing import PriceTable, parse_price_table
from kb.types import SEARCH_MODES, SearchMode

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_CLAUDE_MODEL = "claude-sonnet-5-5"

Check = Callable[[Any], str | None]  # what is wrong with a value, or None


@dataclass(frozen=True, slots=True)
class Spec:
    """One setting: its variable, how its text is parsed, what values it allows, its docs."""

    env: str
    parse: Callable[[str], object]  # raises ValueError saying what is wrong with the text
    doc: str
    min: float | None = None  # allowed: min <= value
    above: float | None = None  # allowed: above < value
    max: float | None = None  # allowed: value <= max
    check: Check | None = None
    shown: str | None = None  # the README's default, when not the default itself
    secret: bool = False  # a problem names the variable, never its value
    also: tuple[str, ...] = ()  # older names of the variable, read when it is unset

    def problem(self, value: object, env: str | None = None) -> str | None:
        """What is wrong with `value` for this setting (naming the variable, `env` when it was
        read under an older name), or None."""
        if self.check is not None and (reason := self.check(value)) is not None:
            return f"{env or self.env}{'' if self.secret else f'={value!r}'} {reason}"
        if (self.min, self.above, self.max) == (None, None, None):
            return None
        if not isinstance(value, int | float) or isinstance(value, bool):
            return f"{self.env} must be a number, not {value!r}"
        if not math.isfinite(value):
            return f"{self.env} must be a finite number, not {value}"
        if self.min is not None and self.max is not None:
            if not self.min <= value <= self.max:
                return f"{self.env} must be between {self.min} and {self.max}, not {value}"
        elif self.min is not None and value < self.min:
            return f"{self.env} must be at least {self.min}, not {value}"
        elif self.max is not None and value > self.max:
            return f"{self.env} must be at most {self.max}, not {value}"
        if self.above is not None and value <= self.above:
            return f"{self.env} must be above {self.above}, not {value}"
        return None


def spec(
    env: str,
    parse: Callable[[str], object],
    doc: str,
    *,
    min: float | None = None,
    above: float | None = None,
    max: float | None = None,
    check: Check | None = None,
    shown: str | None = None,
    secret: bool = False,
    also: tuple[str, ...] = (),
) -> dict[str, Spec]:
    """A Settings field's metadata: `field(default=..., metadata=spec(...))`."""
    return {"spec": Spec(env, parse, doc, min, above, max, check, shown, secret, also)}


def _text(raw: str) -> str:
    return raw


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("is not a valid int") from None


def _float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("is not a valid float") from None
    if not math.isfinite(value):
        raise ValueError("is not a finite number")
    return value


def _path(raw: str) -> Path:
    return Path(raw).expanduser()


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _bool(raw: str) -> bool:
    value = raw.lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("is not a boolean: use true or false")


def _not_empty(value: object) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must not be empty"


def _url(value: object) -> str | None:
    if value is None:
        return None
    try:
        url = urlparse(str(value))
        _ = url.port  # a bad port raises ValueError
    except ValueError:
        url = urlparse("")
    if url.scheme in ("http", "https") and url.hostname:
        return None
    return "is not an http or https URL with a host (http://host:port)"


def _origins(value: object) -> str | None:
    for origin in value if isinstance(value, tuple) else ():
        try:
            url = urlparse(origin)
            _ = url.port
        except ValueError:
            return f"has a bad origin {origin!r}"
        if url.scheme not in ("http", "https") or not url.hostname or url.path or url.query:
            return f"has {origin!r}, not an origin (`https://host[:port]`, no path)"
    return None


EMBED_BACKENDS = ("torch", "onnx", "onnx-int8")
INGEST_BACKENDS = ("auto", "torch", "torch-bf16", "onnx", "onnx-int8")


def _embed_backend(value: object) -> str | None:
    return None if value in EMBED_BACKENDS else "is not a backend: use torch, onnx or onnx-int8"


def _ingest_backend(value: object) -> str | None:
    if value in INGEST_BACKENDS:
        return None
    return f"is not a backend: use {', '.join(INGEST_BACKENDS)}"


def _search_mode(value: object) -> str | None:
    return None if value in SEARCH_MODES else "is not a search mode: use dense, bm25 or hybrid"


# It names Chroma collections (`<name>_chunks`, at most 63 characters) and folders.
_KB_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]|\.(?!\.)){0,52}")


_KB_NAME_RULE = "1 to 53 letters, digits, '_', '-' or single '.', starting with a letter or digit"
DEFAULT_KB = "default"  # the knowledge base whose data lives in the data dir itself


def kb_name_problem(value: object) -> str | None:
    """What is wrong with `value` as a knowledge-base name, or None."""
    if isinstance(value, str) and _KB_NAME.fullmatch(value):
        return None
    return f"must be {_KB_NAME_RULE}"


def key_entry(entry: str) -> tuple[str, str | None]:
    """(key, knowledge-base name) of one `KB_API_KEYS` entry: `key=name`, or a plain `key`
    (name None). The name follows the last `=` (spaces around it do not count); a key that
    ends in `=` (base64 padding) is a plain key."""
    key, eq, name = entry.rpartition("=")
    return (key.strip(), name.strip()) if eq and name.strip() else (entry, None)


def _api_keys(value: object) -> str | None:
    """What is wrong with `KB_API_KEYS`' entries, saying which, never showing a key."""
    seen: dict[str, str | None] = {}
    for n, entry in enumerate(value if isinstance(value, tuple) else (), start=1):
        key, name = key_entry(entry)
        if not key.strip():
            return f"entry {n} has no key before '='"
        if name is not None and not _KB_NAME.fullmatch(name):
            return f"entry {n} maps its key to {name!r}: a knowledge-base name is {_KB_NAME_RULE}"
        if key in seen and seen[key] != name:
            return f"entry {n} maps a key that an earlier entry maps to another knowledge base"
        seen[key] = name
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    data_dir: Path = field(
        default=Path(".kb"),
        metadata=spec(
            "KB_DATA_DIR",
            _path,
            "where the embedded Chroma database, original copies (`blobs/`) and local files live "
            "(the `default` knowledge base's; another's are in `kbs/<name>/`)",
        ),
    )
    chroma_path: Path | None = field(
        default=None,
        metadata=spec(
            "KB_CHROMA_PATH",
            _path,
            "embedded Chroma directory of the `default` knowledge base (another's is "
            "`$KB_DATA_DIR/kbs/<name>/chroma`)",
            shown="`$KB_DATA_DIR/chroma`",
        ),
    )
    chroma_url: str | None = field(
        default=None,
        metadata=spec(
            "KB_CHROMA_URL",
            _text,
            "`http://host:port` of a Chroma server (`chroma run`); shares knowledge bases (two "
            "collections each) between API replicas and ingest workers. Wins over "
            "`KB_CHROMA_PATH`",
            check=_url,
        ),
    )
    kb_name: str = field(
        default=DEFAULT_KB,
        metadata=spec(
            "KB_NAME",
            _text,
            "the knowledge base `kb` commands work on (`--kb` overrides) and plain `KB_API_KEYS` "
            "keys reach: at most 53 letters, digits, `_`, `-` and `.`. Names its Chroma "
            "collections; any but `default` keeps its files in `$KB_DATA_DIR/kbs/<name>/`. "
            "`KB_KB_NAME` is read when unset",
            check=kb_name_problem,
            also=("KB_KB_NAME",),
        ),
    )
    embedding_model: str = field(
        default=DEFAULT_MODEL,
        metadata=spec(
            "KB_EMBEDDING_MODEL",
            _text,
            "sentence-transformers model name or local path; the default loads the packaged "
            "weights offline. Stored with the collection: a different model on an existing "
            "knowledge base is an error",
            check=_not_empty,
        ),
    )
    embed_batch_size: int = field(
        default=64,
        metadata=spec("KB_EMBED_BATCH_SIZE", _int, "texts per model forward pass", min=1),
    )
    embed_backend: str = field(
        default="onnx",
        metadata=spec(
            "KB_EMBED_BACKEND",
            _text,
            "what runs the model for queries (and for documents, unless `KB_INGEST_BACKEND` "
            "picks a faster one): `onnx` (ONNX Runtime, the same vectors as `torch`, and a "
            "query never imports torch), `torch` (sentence-transformers), or `onnx-int8` "
            "(8-bit weights: faster, other vectors). The ONNX graph is built from the model "
            "once and cached (`KB_MODEL_CACHE`). Stored with the collection: `onnx-int8` and "
            "the others cannot share a knowledge base",
            check=_embed_backend,
        ),
    )
    ingest_backend: str = field(
        default="auto",
        metadata=spec(
            "KB_INGEST_BACKEND",
            _text,
            "what embeds documents at ingest: `auto` is `torch-bf16` (torch with its matrix "
            "products in bf16: the same vectors within 1e-4 cosine, about 2.5 times as fast) "
            "where the CPU does bf16 in hardware (Intel AMX) and `KB_EMBED_BACKEND` makes fp32 "
            "vectors, else `KB_EMBED_BACKEND`'s; or name one (`torch`, `torch-bf16`, `onnx`, "
            "`onnx-int8`) that makes the same vectors as `KB_EMBED_BACKEND`. Loaded at the "
            "first ingest; queries never wait for it",
            check=_ingest_backend,
        ),
    )
    model_cache: Path | None = field(
        default=None,
        metadata=spec(
            "KB_MODEL_CACHE",
            _path,
            "where ONNX graphs built from the embedding model are kept (several data dirs may "
            "share one)",
            shown="`$KB_DATA_DIR/models`",
        ),
    )
    embed_threads: int = field(
        default=0,
        metadata=spec(
            "KB_EMBED_THREADS",
            _int,
            "threads ONNX Runtime runs the model on; 0: one per core this process may use",
            min=0,
        ),
    )
    chunk_tokens: int = field(
        default=200,
        metadata=spec(
            "KB_CHUNK_TOKENS",
            _int,
            "chunk size in model tokens (capped at what the model reads: 254 for MiniLM)",
            min=1,
        ),
    )
    chunk_overlap: int = field(
        default=40,
        metadata=spec(
            "KB_CHUNK_OVERLAP",
            _int,
            "tokens shared by consecutive chunks (below `KB_CHUNK_TOKENS`; at most half a chunk is "
            "used)",
            min=0,
        ),
    )
    write_batch_size: int = field(
        default=256,
        metadata=spec(
            "KB_WRITE_BATCH_SIZE",
            _int,
            "chunks embedded and written to Chroma together (capped by Chroma's batch limit)",
            min=1,
        ),
    )
    extract_timeout: float = field(
        default=60.0,
        metadata=spec(
            "KB_EXTRACT_TIMEOUT",
            _float,
            "base seconds one file may take to extract, whatever its size",
            above=0,
        ),
    )
    extract_page_timeout: float = field(
        default=2.0,
        metadata=spec(
            "KB_EXTRACT_PAGE_TIMEOUT",
            _float,
            "seconds added per PDF page (a 500-page filing gets 60 + 2 × 500 s); beyond the limit "
            "a file is `failed: timed out`",
            min=0,
        ),
    )
    max_file_bytes: int = field(
        default=200 * 1024 * 1024,
        metadata=spec("KB_MAX_FILE_BYTES", _int, "larger files are `skipped: too large`", min=1),
    )
    max_page_chars: int = field(
        default=MAX_PAGE_CHARS,
        metadata=spec(
            "KB_MAX_PAGE_CHARS",
            _int,
            "characters kept from one extracted page (a dense page of a filing has 3,000 to "
            "10,000); the rest of a longer page is dropped, and the document's notes say which "
            "pages were cut",
            min=1,
        ),
    )
    max_file_chars: int = field(
        default=MAX_FILE_CHARS,
        metadata=spec(
            "KB_MAX_FILE_CHARS",
            _int,
            "characters kept from one file (a 500-page filing has about 2.5 million); text "
            "beyond it is dropped, and the document's notes say from which page",
            min=1,
        ),
    )
    # Retrieval and answering
    search_mode: SearchMode = field(
        default="hybrid",
        metadata=spec("KB_SEARCH_MODE", _text, "`dense`, `bm25` or `hybrid`", check=_search_mode),
    )
    search_k: int = field(
        default=5, metadata=spec("KB_SEARCH_K", _int, "documents returned by search", min=1)
    )
    max_documents: int = field(
        default=5,
        metadata=spec(
            "KB_MAX_DOCUMENTS",
            _int,
            "documents attached to a question (and the largest `max_documents` the API accepts)",
            min=1,
        ),
    )
    pdf_window_pages: int = field(
        default=3,
        metadata=spec(
            "KB_PDF_WINDOW_PAGES",
            _int,
            "a PDF longer than this is stored as page windows of this many pages, each its own "
            "file; a question sends the windows that hold its best passages. Changing it moves "
            "stored PDFs to the new windows on `kb files sync` or their next question, without "
            "re-embedding",
            min=1,
        ),
    )
    max_request_pages: int = field(
        default=30,
        metadata=spec(
            "KB_MAX_REQUEST_PAGES",
            _int,
            "PDF pages one question may send to Claude (at least one window; the Messages API "
            "takes at most 100 per request)",
            min=1,
        ),
    )
    max_request_tokens: int = field(
        default=150_000,
        metadata=spec(
            "KB_MAX_REQUEST_TOKENS",
            _int,
            "estimated input-token budget of one question (2,000 per PDF page); must hold one "
            "window",
            min=1,
        ),
    )
    pdf_part_max_bytes: int = field(
        default=30 * 1024 * 1024,
        metadata=spec(
            "KB_PDF_PART_MAX_BYTES",
            _int,
            "a window of a PDF larger than this is halved until it fits",
            min=1,
        ),
    )
    gc_grace_seconds: float = field(
        default=3600.0,
        metadata=spec(
            "KB_GC_GRACE_SECONDS",
            _float,
            "`kb files gc` deletes an unreferenced file only once it is this old: an ingest "
            "uploads a document's files before it commits the record that uses them",
            min=0,
        ),
    )
    # Anthropic
    anthropic_api_key: str | None = field(
        default=None,
        repr=False,
        metadata=spec(
            "ANTHROPIC_API_KEY", _text, "switches on the Files API store and Claude answers"
        ),
    )
    anthropic_base_url: str | None = field(
        default=None,
        metadata=spec(
            "ANTHROPIC_BASE_URL",
            _text,
            "another implementation of the Anthropic API (`http(s)://host[:port]`)",
            check=_url,
        ),
    )
    claude_model: str = field(
        default=DEFAULT_CLAUDE_MODEL,
        metadata=spec("KB_CLAUDE_MODEL", _text, "model for answers", check=_not_empty),
    )
    max_output_tokens: int = field(
        default=1024, metadata=spec("KB_MAX_OUTPUT_TOKENS", _int, "answer length limit", min=1)
    )
    upload_timeout: float = field(
        default=120.0,
        metadata=spec("KB_UPLOAD_TIMEOUT", _float, "seconds per Files API upload", above=0),
    )
    price_table: PriceTable = field(
        default=PriceTable(),
        metadata=spec(
            "KB_PRICE_TABLE",
            parse_price_table,
            "cost estimate prices that override or extend the built-in table (`kb/pricing.py`): "
            "`model=input,output,cache_write,cache_read;...` in USD per million tokens",
            shown="built in",
        ),
    )
    # Bulk questions (`kb ask --batch`, `/v1/batches`)
    batch_max_requests: int = field(
        default=100_000,
        metadata=spec(
            "KB_BATCH_MAX_REQUESTS",
            _int,
            "requests per Message Batch; more questions go in several batches (the API's limit "
            "is 100,000)",
            min=1,
            max=100_000,
        ),
    )
    batch_max_bytes: int = field(
        default=256_000_000,
        metadata=spec(
            "KB_BATCH_MAX_BYTES",
            _int,
            "bytes of one Message Batch request body; more go in several batches (the API's "
            "limit is 256 MB)",
            min=1024,
            max=256 * 1024 * 1024,
        ),
    )
    batch_max_questions: int = field(
        default=100_000,
        metadata=spec("KB_BATCH_MAX_QUESTIONS", _int, "questions one bulk job may hold", min=1),
    )
    batch_poll_seconds: float = field(
        default=10.0,
        metadata=spec(
            "KB_BATCH_POLL_SECONDS",
            _float,
            "seconds between looks at running batches while `kb ask --batch` waits",
            above=0,
        ),
    )
    # API
    host: str = field(
        default="127.0.0.1",
        metadata=spec(
            "KB_HOST", _text, "address `kb serve` listens on (`--host` overrides)", check=_not_empty
        ),
    )
    port: int = field(
        default=8000,
        metadata=spec(
            "KB_PORT", _int, "port `kb serve` listens on (`--port` overrides)", min=1, max=65535
        ),
    )
    api_keys: tuple[str, ...] = field(
        default=(),
        repr=False,
        metadata=spec(
            "KB_API_KEYS",
            _list,
            "comma-separated bearer keys for the API; `key=name` gives a key the knowledge base "
            "`name` (its own documents, searches and answers), a plain key reaches `KB_NAME`'s",
            check=_api_keys,
            secret=True,
        ),
    )
    max_question_chars: int = field(
        default=2000,
        metadata=spec(
            "KB_MAX_QUESTION_CHARS", _int, "longest question the API accepts (400 beyond)", min=1
        ),
    )
    max_k: int = field(
        default=50,
        metadata=spec(
            "KB_MAX_K",
            _int,
            "largest `k` the API's `/v1/search` accepts; also the candidates searched when "
            "`/v1/ask` has filters",
            min=1,
        ),
    )
    max_upload_bytes: int = field(
        default=100 * 1024 * 1024,
        metadata=spec(
            "KB_MAX_UPLOAD_BYTES",
            _int,
            "largest upload accepted by `POST /v1/documents` (413 beyond)",
            min=1,
        ),
    )
    body_timeout: float = field(
        default=600.0,
        metadata=spec(
            "KB_BODY_TIMEOUT",
            _float,
            "seconds a request body may take to arrive in full (408 beyond; an upload's temp "
            "files are removed)",
            above=0,
        ),
    )
    body_min_rate: int = field(
        default=10_000,
        metadata=spec(
            "KB_BODY_MIN_RATE",
            _int,
            "bytes per second a request body must average after its first 10 seconds (408 "
            "below: a stalled or trickling upload is dropped); 0 checks only `KB_BODY_TIMEOUT`",
            min=0,
        ),
    )
    allowed_hosts: tuple[str, ...] = field(
        default=(),
        metadata=spec(
            "KB_ALLOWED_HOSTS",
            _list,
            "comma-separated names the API answers to in the `Host` header, besides `localhost`, "
            "loopback addresses and the address it is bound to (400 otherwise); `*` allows any",
        ),
    )
    cors_origins: tuple[str, ...] = field(
        default=(),
        metadata=spec(
            "KB_CORS_ORIGINS",
            _list,
            "comma-separated origins (`https://app.example.com`) that browsers may call the "
            "API from; unset sends no CORS headers, and writes from any other origin are 403",
            check=_origins,
        ),
    )
    send_source_paths: bool = field(
        default=False,
        metadata=spec(
            "KB_SEND_SOURCE_PATHS",
            _bool,
            "`true`: each document sent to Claude names its source (a local path or upload "
            "name); by default only its title and pages are sent",
            shown="`false`",
        ),
    )

    def __post_init__(self) -> None:
        problems = [p for name, s in specs().items() if (p := s.problem(getattr(self, name)))]
        if not problems:  # the checks across fields assume each field is valid
            problems = [
                *self._overlap_problems(),
                *self._window_problems(),
                *self._backend_problems(),
            ]
        if problems:
            raise ConfigError("; ".join(problems))

    def _overlap_problems(self) -> list[str]:
        if self.chunk_overlap < self.chunk_tokens:
            return []
        return [
            f"KB_CHUNK_OVERLAP={self.chunk_overlap} must be below KB_CHUNK_TOKENS="
            f"{self.chunk_tokens}"
        ]

    def _backend_problems(self) -> list[str]:
        from kb.embedding import VECTORS

        chosen = self.ingest_backend
        if chosen == "auto" or VECTORS[chosen] == VECTORS[self.embed_backend]:
            return []
        return [
            f"KB_INGEST_BACKEND={chosen} makes other vectors than KB_EMBED_BACKEND="
            f"{self.embed_backend}, which searches them: use one of "
            + ", ".join(b for b in VECTORS if VECTORS[b] == VECTORS[self.embed_backend])
            + " or auto"
        ]

    def _window_problems(self) -> list[str]:
        """One page window must always fit a question's budget, so that a question whose
        retrieval found something never sends nothing."""
        from kb.anthropic.request import OVERHEAD_TOKENS, PDF_PAGE_TOKENS

        if self.pdf_window_pages > self.max_request_pages:
            return [
                f"KB_PDF_WINDOW_PAGES={self.pdf_window_pages} must not exceed "
                f"KB_MAX_REQUEST_PAGES={self.max_request_pages}"
            ]
        needed = self.pdf_window_pages * PDF_PAGE_TOKENS + OVERHEAD_TOKENS
        needed += self.max_question_chars // 2
        if needed > self.max_request_tokens:
            return [
                f"KB_MAX_REQUEST_TOKENS={self.max_request_tokens} is too small for one window of "
                f"KB_PDF_WINDOW_PAGES={self.pdf_window_pages} pages (about {needed} tokens at "
                f"{PDF_PAGE_TOKENS} per page and a KB_MAX_QUESTION_CHARS question)"
            ]
        return []

    @property
    def extraction_limits(self) -> Limits:
        return Limits(self.max_page_chars, self.max_file_chars)

    @property
    def kb_dir(self) -> Path:
        """Where this knowledge base's own files live: the data dir itself for `default` (as
        before knowledge bases had names of their own), `data_dir/kbs/<name>` for any other,
        so that nothing local (Chroma, copies, BM25, stored files, claims) is shared."""
        return self.data_dir if self.kb_name == DEFAULT_KB else self.data_dir / "kbs" / self.kb_name

    @property
    def chroma_dir(self) -> Path:
        if self.kb_name == DEFAULT_KB and self.chroma_path is not None:
            return self.chroma_path
        return self.kb_dir / "chroma"

    @property
    def model_cache_dir(self) -> Path:
        """ONNX graphs built from the embedding model (`kb.onnx_export`)."""
        return self.model_cache or self.data_dir / "models"

    @property
    def blob_dir(self) -> Path:
        return self.kb_dir / "blobs"

    @property
    def lock_dir(self) -> Path:
        """Lock files of the writers on this machine (`kb.claims`)."""
        return self.kb_dir / "locks"

    @property
    def key_names(self) -> dict[str, str]:
        """Each API key and the knowledge base it reaches (`KB_NAME`'s for a plain key)."""
        found: dict[str, str] = {}
        for entry in self.api_keys:
            key, name = key_entry(entry)
            found[key] = name or self.kb_name
        return found

    def for_kb(self, name: str) -> Settings:
        """These settings for the knowledge base `name` (checked like any other)."""
        return self if name == self.kb_name else self.replace(kb_name=name)

    @property
    def online(self) -> bool:
        """True when answers come from Claude and originals go to the Files API."""
        return bool(self.anthropic_api_key)

    def replace(self, **changes: object) -> Settings:
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env"
    ) -> Settings:
        """Read settings from `environ` (default: the process environment) over `env_file`.
        Every variable is parsed and checked; all problems are reported in one ConfigError."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            from dotenv import dotenv_values

            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        return cls._from_mapping(values)

    @classmethod
    def _from_mapping(cls, env: Mapping[str, str]) -> Settings:
        kwargs: dict[str, object] = {}
        problems: list[str] = []
        for name, s in specs().items():
            var = next((v for v in (s.env, *s.also) if (env.get(v) or "").strip()), s.env)
            raw = (env.get(var) or "").strip()
            if not raw:
                continue
            try:
                value = s.parse(raw)
            except ConfigError as exc:  # already names the variable and the bad part
                problems.append(exc.message)
            except ValueError as exc:
                problems.append(f"{var}{'' if s.secret else f'={raw!r}'} {exc}")
            else:
                if problem := s.problem(value, var):
                    problems.append(problem)
                kwargs[name] = value
        if problems:
            raise ConfigError("; ".join(problems))
        return cls(**kwargs)  # type: ignore[arg-type]


# Variables read outside Settings (before settings load); listed here so the README documents
# every variable in one table: (variable, default, meaning).
OTHER_VARIABLES = (
    (
        "KB_DEBUG",
        "unset",
        "any value: CLI errors show their stack trace instead of one `kb: <message>` line",
    ),
)


def specs() -> dict[str, Spec]:
    """Every setting's spec by attribute name, in field order."""
    return {f.name: f.metadata["spec"] for f in dataclasses.fields(Settings)}


def settings_table() -> str:
    """The README's settings table (markdown), generated from the specs above."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f in dataclasses.fields(Settings):
        s: Spec = f.metadata["spec"]
        rows.append(f"| `{s.env}` | {s.shown or _shown(f.default)} | {s.doc} |")
    rows += [f"| `{env}` | {shown} | {doc} |" for env, shown, doc in OTHER_VARIABLES]
    return "\n".join(rows) + "\n"


def _shown(default: object) -> str:
    if default is None or default == ():
        return "unset"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"
