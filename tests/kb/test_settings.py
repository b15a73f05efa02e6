"""Settings come from KB_* variables and .env, with clear errors for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.errors import ConfigError
from kb.pricing import PriceTable, estimate_cost
from kb.settings import Settings
from kb.types import Usage


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


COUNTS = [
    "KB_EMBED_BATCH_SIZE",
    "KB_CHUNK_TOKENS",
    "KB_WRITE_BATCH_SIZE",
    "KB_MAX_FILE_BYTES",
    "KB_SEARCH_K",
    "KB_MAX_DOCUMENTS",
    "KB_PDF_WINDOW_PAGES",
    "KB_MAX_REQUEST_PAGES",
    "KB_MAX_REQUEST_TOKENS",
    "KB_PDF_PART_MAX_BYTES",
    "KB_MAX_OUTPUT_TOKENS",
    "KB_MAX_QUESTION_CHARS",
    "KB_MAX_K",
    "KB_MAX_UPLOAD_BYTES",
]


@pytest.mark.parametrize("variable", COUNTS)
@pytest.mark.parametrize("value", ["0", "-3"])
def test_counts_must_be_at_least_one(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{variable} must be at least 1, not {value}$"):
        Settings.from_env({variable: value}, env_file=None)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KB_EXTRACT_TIMEOUT": "soon"}, "KB_EXTRACT_TIMEOUT='soon' is not a valid float"),
        ({"KB_UPLOAD_TIMEOUT": "nan"}, "KB_UPLOAD_TIMEOUT='nan' is not a finite number"),
        ({"KB_EXTRACT_TIMEOUT": "inf"}, "KB_EXTRACT_TIMEOUT='inf' is not a finite number"),
        ({"KB_UPLOAD_TIMEOUT": "0"}, "KB_UPLOAD_TIMEOUT must be above 0, not 0.0"),
        ({"KB_EXTRACT_TIMEOUT": "-5"}, "KB_EXTRACT_TIMEOUT must be above 0, not -5.0"),
        ({"KB_EXTRACT_PAGE_TIMEOUT": "-0.5"}, "KB_EXTRACT_PAGE_TIMEOUT must be at least 0"),
        ({"KB_PORT": "0"}, "KB_PORT must be between 1 and 65535, not 0"),
        ({"KB_PORT": "65536"}, "KB_PORT must be between 1 and 65535, not 65536"),
        ({"KB_PORT": "http"}, "KB_PORT='http' is not a valid int"),
        ({"KB_CHUNK_OVERLAP": "-1"}, "KB_CHUNK_OVERLAP must be at least 0, not -1"),
        ({"KB_CHUNK_OVERLAP": "200"}, "KB_CHUNK_OVERLAP=200 must be below KB_CHUNK_TOKENS=200"),
        (
            {"KB_CHUNK_TOKENS": "30", "KB_CHUNK_OVERLAP": "30"},
            "KB_CHUNK_OVERLAP=30 must be below KB_CHUNK_TOKENS=30",
        ),
        ({"KB_SEARCH_MODE": "fuzzy"}, "KB_SEARCH_MODE='fuzzy' is not a search mode"),
        ({"KB_CHROMA_URL": "localhost:8000"}, "KB_CHROMA_URL='localhost:8000' is not an http"),
        ({"KB_CHROMA_URL": "ftp://chroma"}, "KB_CHROMA_URL='ftp://chroma' is not an http"),
        ({"KB_CHROMA_URL": "http://"}, "KB_CHROMA_URL='http://' is not an http"),
        ({"KB_CHROMA_URL": "http://h:port"}, "KB_CHROMA_URL='http://h:port' is not an http"),
        ({"KB_CHROMA_URL": "http://h:70000"}, "KB_CHROMA_URL='http://h:70000' is not an http"),
        (
            {"ANTHROPIC_BASE_URL": "api.anthropic.com"},
            "ANTHROPIC_BASE_URL='api.anthropic.com' is not an http or https URL",
        ),
        ({"KB_NAME": "my kb"}, "KB_NAME='my kb' must be 1 to 53 letters"),
        ({"KB_NAME": "../up"}, "KB_NAME='../up' must be"),
        ({"KB_KB_NAME": "a..b"}, "KB_KB_NAME='a..b' must be"),
        ({"KB_KB_NAME": "k" * 54}, "KB_KB_NAME='k{54}' must be"),
        (
            {"KB_PRICE_TABLE": "claude=1,2"},
            "KB_PRICE_TABLE entry 'claude=1,2' must be model=input,output,cache_write,cache_read",
        ),
        ({"KB_PRICE_TABLE": "=1,2,3,4"}, "KB_PRICE_TABLE entry '=1,2,3,4' must be model="),
        ({"KB_PRICE_TABLE": "a=1,2,3,4;b=1,x,3,4"}, "KB_PRICE_TABLE entry 'b=1,x,3,4' must be"),
        (
            {"KB_PRICE_TABLE": "claude=1,2,3,-4"},
            "KB_PRICE_TABLE entry 'claude=1,2,3,-4': prices must be finite and not negative",
        ),
        ({"KB_PRICE_TABLE": "claude=1,2,3,inf"}, "KB_PRICE_TABLE entry 'claude=1,2,3,inf'"),
    ],
)
def test_each_kind_of_bad_value_names_its_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        Settings.from_env(env, env_file=None)
    assert raised.value.exit_code == 2


def test_all_bad_values_are_reported_at_once() -> None:
    env = {"KB_PORT": "0", "KB_SEARCH_K": "x", "KB_CHROMA_URL": "nope", "KB_PRICE_TABLE": "m=1"}
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env, env_file=None)
    message = str(raised.value)
    assert "KB_PORT must be between 1 and 65535, not 0" in message
    assert "KB_SEARCH_K='x' is not a valid int" in message
    assert "KB_CHROMA_URL='nope' is not an http" in message
    assert "KB_PRICE_TABLE entry 'm=1'" in message


def test_settings_made_directly_or_replaced_are_checked_too() -> None:
    with pytest.raises(ConfigError, match="KB_PORT must be between 1 and 65535, not 0"):
        Settings(port=0)
    with pytest.raises(ConfigError, match="KB_UPLOAD_TIMEOUT must be above 0"):
        Settings().replace(upload_timeout=0)
    with pytest.raises(ConfigError, match="KB_SEARCH_K must be a number, not '5'"):
        Settings(search_k="5")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="KB_CLAUDE_MODEL='' must not be empty"):
        Settings(claude_model="")
    with pytest.raises(ConfigError, match="ANTHROPIC_BASE_URL='file:///tmp' is not an http"):
        Settings(anthropic_base_url="file:///tmp")


def test_secrets_never_appear_in_errors() -> None:
    env = {"ANTHROPIC_API_KEY": "sk-secret", "KB_API_KEYS": "key-1", "KB_PORT": "0"}
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(env, env_file=None)
    assert "sk-secret" not in str(raised.value) and "key-1" not in str(raised.value)


def test_good_values_are_accepted() -> None:
    env = {
        "KB_PORT": "65535",
        "KB_HOST": "0.0.0.0",
        "KB_CHUNK_TOKENS": "120",
        "KB_CHUNK_OVERLAP": "0",
        "KB_EXTRACT_TIMEOUT": "0.5",
        "KB_EXTRACT_PAGE_TIMEOUT": "0",
        "KB_UPLOAD_TIMEOUT": "1e1",
        "KB_MAX_FILE_BYTES": "1",
        "KB_SEARCH_MODE": "bm25",
        "KB_CHROMA_URL": "https://chroma.example.com",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9000/",
        "KB_NAME": "team.docs-2_a",
        "KB_CHROMA_PATH": "~/kb-chroma",
        "KB_MAX_OUTPUT_TOKENS": " 2048 ",
        "KB_SEARCH_K": "   ",  # blank: the default
    }
    settings = Settings.from_env(env, env_file=None)
    assert (settings.port, settings.host) == (65535, "0.0.0.0")
    assert (settings.chunk_tokens, settings.chunk_overlap) == (120, 0)
    assert (settings.extract_timeout, settings.extract_page_timeout) == (0.5, 0.0)
    assert settings.upload_timeout == 10.0 and settings.max_file_bytes == 1
    assert settings.search_mode == "bm25"
    assert settings.chroma_url == "https://chroma.example.com"
    assert settings.anthropic_base_url == "http://127.0.0.1:9000/"
    assert settings.kb_name == "team.docs-2_a"
    assert settings.chroma_path == Path.home() / "kb-chroma"
    assert settings.for_kb("default").chroma_dir == Path.home() / "kb-chroma"
    assert settings.max_output_tokens == 2048 and settings.search_k == 5
    assert Settings.from_env({"KB_PORT": "1", "KB_CHUNK_OVERLAP": "199"}, env_file=None).port == 1
    for mode in ("dense", "bm25", "hybrid"):
        assert Settings(search_mode=mode).search_mode == mode
    assert Settings.from_env({"KB_KB_NAME": "k" * 53}, env_file=None).kb_name == "k" * 53


def test_api_key_is_read_without_surrounding_space() -> None:
    settings = Settings.from_env({"ANTHROPIC_API_KEY": " sk-abc\n"}, env_file=None)
    assert settings.anthropic_api_key == "sk-abc"


def test_price_table_is_parsed_at_load() -> None:
    env = {"KB_PRICE_TABLE": " claude-sonnet-5-5=1,2,3,4; my-model=0.5,1,0,0.1 ;"}
    settings = Settings.from_env(env, env_file=None)
    assert isinstance(settings.price_table, PriceTable)
    assert dict(settings.price_table) == {
        "claude-sonnet-5-5": (1.0, 2.0, 3.0, 4.0),
        "my-model": (0.5, 1.0, 0.0, 0.1),
    }
    usage = Usage(1_000_000, 1_000_000, 0, 0)
    assert estimate_cost("claude-sonnet-5-5", usage, settings.price_table) == pytest.approx(3.0)
    assert estimate_cost("my-model-v2", usage, settings.price_table) == pytest.approx(1.5)
    assert estimate_cost("claude-opus-5", usage, settings.price_table) == pytest.approx(30.0)
    assert hash(settings) == hash(Settings.from_env(env, env_file=None))  # frozen and hashable


def test_default_price_table_is_empty_and_uses_built_in_prices() -> None:
    settings = Settings.from_env({}, env_file=None)
    assert dict(settings.price_table) == {}
    usage = Usage(1_000_000, 0, 0, 0)
    assert estimate_cost("claude-sonnet-5-5", usage, settings.price_table) == pytest.approx(3.0)


def test_hardening_settings_parse_and_check() -> None:
    settings = Settings.from_env(
        {
            "KB_SEND_SOURCE_PATHS": "true",
            "KB_ALLOWED_HOSTS": "kb.example.com, 10.0.0.5",
            "KB_CORS_ORIGINS": "https://app.example.com,http://localhost:3000",
            "KB_MAX_PAGE_CHARS": "5000",
            "KB_BODY_MIN_RATE": "0",
        },
        env_file=None,
    )
    assert settings.send_source_paths is True
    assert settings.allowed_hosts == ("kb.example.com", "10.0.0.5")
    assert settings.cors_origins == ("https://app.example.com", "http://localhost:3000")
    assert settings.extraction_limits.page_chars == 5000
    assert Settings.from_env({}, env_file=None).send_source_paths is False
    with pytest.raises(ConfigError, match="KB_SEND_SOURCE_PATHS='maybe' is not a boolean"):
        Settings.from_env({"KB_SEND_SOURCE_PATHS": "maybe"}, env_file=None)
    with pytest.raises(ConfigError, match=r"KB_CORS_ORIGINS=.*not an origin"):
        Settings.from_env({"KB_CORS_ORIGINS": "https://app.example.com/path"}, env_file=None)
    with pytest.raises(ConfigError, match="KB_BODY_TIMEOUT must be above 0"):
        Settings.from_env({"KB_BODY_TIMEOUT": "0"}, env_file=None)


# -- knowledge bases per key --------------------------------------------------------------------


def test_api_keys_map_keys_to_knowledge_bases() -> None:
    env = {"KB_API_KEYS": "k1=finance, k2 = support,plain,padded==", "KB_NAME": "team"}
    settings = Settings.from_env(env, env_file=None)
    assert settings.key_names == {
        "k1": "finance",
        "k2": "support",
        "plain": "team",  # a plain key reaches KB_NAME's knowledge base
        "padded==": "team",  # base64 padding, not a mapping
    }
    shared = Settings.from_env({"KB_API_KEYS": "a,b"}, env_file=None)
    assert shared.key_names == {"a": "default", "b": "default"}


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("secret-1=my kb", r"KB_API_KEYS entry 1 maps its key to 'my kb': a knowledge-base name"),
        ("a=ok,secret-2=../up", r"KB_API_KEYS entry 2 maps its key to '\.\./up'"),
        ("=finance", "KB_API_KEYS entry 1 has no key before '='"),
        ("secret-3=a,secret-3=b", "entry 2 maps a key that an earlier entry maps to another"),
    ],
)
def test_a_bad_key_mapping_is_named_without_showing_keys(keys: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as raised:
        Settings.from_env({"KB_API_KEYS": keys}, env_file=None)
    assert "secret" not in str(raised.value)
    with pytest.raises(ConfigError, match=message):
        Settings(api_keys=tuple(keys.split(",")))


def test_a_named_knowledge_base_keeps_its_files_in_a_directory_of_its_own(tmp_path: Path) -> None:
    default = Settings(data_dir=tmp_path, chroma_path=tmp_path / "elsewhere")
    assert default.kb_dir == tmp_path  # as before knowledge bases had directories
    assert (default.chroma_dir, default.blob_dir) == (tmp_path / "elsewhere", tmp_path / "blobs")
    finance = default.for_kb("finance")
    assert finance.kb_dir == tmp_path / "kbs" / "finance"
    assert finance.chroma_dir == tmp_path / "kbs" / "finance" / "chroma"
    assert finance.blob_dir == tmp_path / "kbs" / "finance" / "blobs"
    assert finance.lock_dir == tmp_path / "kbs" / "finance" / "locks"
    with pytest.raises(ConfigError, match="KB_NAME='a/b' must be"):
        default.for_kb("a/b")


def test_kb_name_wins_over_its_older_name() -> None:
    env = {"KB_NAME": "new", "KB_KB_NAME": "old"}
    assert Settings.from_env(env, env_file=None).kb_name == "new"
    assert Settings.from_env({"KB_KB_NAME": "old"}, env_file=None).kb_name == "old"
