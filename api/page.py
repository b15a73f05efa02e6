"""The web page: `GET /` and its script and style under `/ui/`, served from `api/web/`.

No build step and nothing from another site: one HTML file, one script, one style sheet,
shipped in the package. The page holds no data of its own; everything it shows or changes goes
through the `/v1` routes with the key the user typed (`Authorization: Bearer ...`), so it can do
nothing the API does not allow. The page itself needs no key. It is left out of the OpenAPI
document.
"""

from __future__ import annotations

from pathlib import Path

from litestar import Router, get
from litestar.datastructures import CacheControlHeader
from litestar.response import File
from litestar.static_files import create_static_files_router

WEB_DIR = Path(__file__).parent / "web"
_REVALIDATE = CacheControlHeader(no_cache=True)  # a new version of kb shows at once


@get("/", include_in_schema=False, cache_control=_REVALIDATE)
async def index() -> File:
    return File(
        WEB_DIR / "index.html",
        content_disposition_type="inline",
        media_type="text/html",
    )


def page_routes() -> list[object]:
    assets: Router = create_static_files_router(
        path="/ui", directories=[WEB_DIR], name="ui", cache_control=_REVALIDATE
    )
    return [index, assets]
