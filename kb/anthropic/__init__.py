"""Everything kb says to Anthropic, in one package.

- `client`: the SDK client, built from settings (explicit key and base URL, bounded retries);
- `errors`: SDK exceptions mapped onto `kb.errors`;
- `files`: the Files API as a `FileStore` (uploads found again instead of sent twice);
- `request`: choosing the page windows for a question and building the Messages request;
- `answerer`: sending it, plain or streamed, and mapping citations back to original pages.
"""
