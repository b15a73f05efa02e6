"""Settings come from KB_* variables and .env, with clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.errors import ConfigError
from kb.settings import Settings


def test_defaults_work_offline() -> None:
    settings = Settings.from_env({}, env_file=None)
    assert settings.data_dir == Path(".kb")
    assert settings.chroma_dir == Path(".kb/chroma")
    assert not settings.online
    assert settings.search_mode == "hybrid"


def test_environment_overrides_dotenv(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("KB_DATA_DIR=/from/dotenv\nKB_SEARCH_K=9\nANTHROPIC_API_KEY=sk-dotenv\n")
    settings = Settings.from_env({"KB_SEARCH_K": "3", "KB_API_KEYS": "a, b,"}, env_file=env_file)
    assert settings.data_dir == Path("/from/dotenv")
    assert settings.search_k == 3
    assert settings.api_keys == ("a", "b")
    assert settings.online and settings.anthropic_api_key == "sk-dotenv"
    assert "sk-dotenv" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KB_SEARCH_K": "many"}, "KB_SEARCH_K='many' is not a valid int"),
        ({"KB_SEARCH_MODE": "fuzzy"}, "use dense, bm25 or hybrid"),
        ({"KB_CHUNK_OVERLAP": "300"}, "must be below KB_CHUNK_TOKENS"),
        ({"KB_MAX_K": "0"}, "KB_MAX_K must be at least 1"),
    ],
)
def test_bad_values_are_clear_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env, env_file=None)
