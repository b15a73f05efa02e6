"""The Anthropic SDK client kb uses, built once per process from settings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kb.errors import ConfigError

if TYPE_CHECKING:
    import anthropic

    from kb.settings import Settings

MAX_RETRY_WAIT = 20.0  # seconds the SDK may sleep between retries, whatever retry-after says


def make_client(settings: Settings) -> anthropic.Anthropic:
    """An SDK client for `settings` (`ANTHROPIC_API_KEY`, `ANTHROPIC_BASE_URL`): explicit key
    and base URL, so the SDK's own credential discovery never picks another; bounded timeouts."""
    import anthropic

    class Client(anthropic.Anthropic):
        """Honours `retry-after`, but waits at most `max_retry_wait` seconds (the SDK itself
        would sleep for as long as any server asks, e.g. an hour, inside one request).
        Otherwise the SDK's client as it is, down to its User-Agent."""

        max_retry_wait = MAX_RETRY_WAIT

        @property
        def user_agent(self) -> str:
            """The SDK's own `Anthropic/Python <version>`: the SDK names the client's class,
            and this subclass must not change what Anthropic sees."""
            return f"{anthropic.Anthropic.__name__}/Python {anthropic.__version__}"

        def _calculate_retry_timeout(self, *args: Any, **kwargs: Any) -> float:
            wait = float(super()._calculate_retry_timeout(*args, **kwargs))
            return min(wait, self.max_retry_wait)

    key = (settings.anthropic_api_key or "").strip()
    if not key:
        raise ConfigError("ANTHROPIC_API_KEY is not set")
    return Client(
        api_key=key,
        base_url=(settings.anthropic_base_url or "").strip() or None,
        timeout=anthropic.Timeout(300.0, connect=10.0),
        max_retries=2,
    )
