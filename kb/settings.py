"""Settings: one frozen object, read from `KB_*` variables (and `.env`) at the edge.

Nothing below this module reads `os.environ`; the object is passed down.
Every field is documented in the README's settings table.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kb.errors import ConfigError
from kb.types import SEARCH_MODES, SearchMode

DEFAULT_MODEL = "all-MiniLM-L6-v2"
DEFAULT_CLAUDE_MODEL = "claude-sonnet-5-5"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path = Path(".kb")
    chroma_path: Path | None = None  # default: data_dir / "chroma"
    chroma_url: str | None = None  # http://host:port of a Chroma server; wins over chroma_path
    kb_name: str = "default"
    embedding_model: str = DEFAULT_MODEL
    embed_batch_size: int = 64
    chunk_tokens: int = 200
    chunk_overlap: int = 40
    write_batch_size: int = 256
    extract_timeout: float = 60.0  # seconds for any file, plus extract_page_timeout per page
    extract_page_timeout: float = 2.0
    max_file_bytes: int = 200 * 1024 * 1024
    # Retrieval and answering
    search_mode: SearchMode = "hybrid"
    search_k: int = 5
    max_documents: int = 5
    max_request_pages: int = 30
    pdf_window_pages: int = 5
    max_request_tokens: int = 150_000
    pdf_part_max_bytes: int = 30 * 1024 * 1024
    # Anthropic
    anthropic_api_key: str | None = field(default=None, repr=False)
    anthropic_base_url: str | None = None
    claude_model: str = DEFAULT_CLAUDE_MODEL
    max_output_tokens: int = 1024
    upload_timeout: float = 120.0
    price_table: str = ""  # "model=input,output,cache_write,cache_read;..." USD per million tokens
    # API
    host: str = "127.0.0.1"
    port: int = 8000
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    max_question_chars: int = 2000
    max_k: int = 50
    max_upload_bytes: int = 100 * 1024 * 1024

    def __post_init__(self) -> None:
        if self.search_mode not in SEARCH_MODES:
            raise ConfigError(f"KB_SEARCH_MODE={self.search_mode!r}: use dense, bm25 or hybrid")
        if not 0 <= self.chunk_overlap < self.chunk_tokens:
            raise ConfigError(
                f"KB_CHUNK_OVERLAP={self.chunk_overlap} must be below KB_CHUNK_TOKENS="
                f"{self.chunk_tokens}"
            )
        for name in (
            "embed_batch_size",
            "write_batch_size",
            "search_k",
            "max_documents",
            "max_request_pages",
            "pdf_window_pages",
            "max_k",
            "max_question_chars",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"KB_{name.upper()} must be at least 1")
        self._check_window_fits()

    def _check_window_fits(self) -> None:
        """One page window must always fit a question's budget, so that a question whose
        retrieval found something never sends nothing."""
        from kb.anthropic.request import OVERHEAD_TOKENS, PDF_PAGE_TOKENS

        if self.pdf_window_pages > self.max_request_pages:
            raise ConfigError(
                f"KB_PDF_WINDOW_PAGES={self.pdf_window_pages} must not exceed "
                f"KB_MAX_REQUEST_PAGES={self.max_request_pages}"
            )
        needed = self.pdf_window_pages * PDF_PAGE_TOKENS + OVERHEAD_TOKENS
        needed += self.max_question_chars // 2
        if needed > self.max_request_tokens:
            raise ConfigError(
                f"KB_MAX_REQUEST_TOKENS={self.max_request_tokens} is too small for one window of "
                f"KB_PDF_WINDOW_PAGES={self.pdf_window_pages} pages (about {needed} tokens at "
                f"{PDF_PAGE_TOKENS} per page and a KB_MAX_QUESTION_CHARS question)"
            )

    @property
    def chroma_dir(self) -> Path:
        return self.chroma_path or self.data_dir / "chroma"

    @property
    def blob_dir(self) -> Path:
        return self.data_dir / "blobs"

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
        """Read settings from `environ` (default: the process environment) over `env_file`."""
        values: dict[str, str] = {}
        if env_file is not None and Path(env_file).is_file():
            from dotenv import dotenv_values

            values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        return cls._from_mapping(values)

    @classmethod
    def _from_mapping(cls, env: Mapping[str, str]) -> Settings:
        kwargs: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = env.get(_ENV_NAMES.get(f.name, "KB_" + f.name.upper()))
            if raw is None or raw == "":
                continue
            kwargs[f.name] = _parse(f.name, str(f.type), raw)
        return cls(**kwargs)  # type: ignore[arg-type]


_ENV_NAMES = {
    "anthropic_api_key": "ANTHROPIC_API_KEY",
    "anthropic_base_url": "ANTHROPIC_BASE_URL",
}


def _parse(name: str, type_name: str, raw: str) -> object:
    env_name = _ENV_NAMES.get(name, "KB_" + name.upper())
    try:
        if "Path" in type_name:
            return Path(raw).expanduser()
        if type_name.startswith("int"):
            return int(raw)
        if type_name.startswith("float"):
            return float(raw)
        if type_name.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise ConfigError(f"{env_name}={raw!r} is not a valid {type_name}") from exc
    return raw
