"""`/v1/documents`: upload (multipart, streamed to disk), list, get and delete documents."""

from __future__ import annotations

import logging
import shutil
from typing import Annotated, Any

import anyio.to_thread
from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, FromQuery, QueryParameter

from api.deps import KB
from api.schemas import (
    DocumentList,
    DocumentOut,
    Kind,
    UploadResponse,
    from_document,
    from_file_result,
)
from api.uploads import ReceivedFile, receive_files, upload_dir
from kb.errors import InvalidInput, UnsupportedType
from kb.service import KnowledgeBase

log = logging.getLogger("kb.api")

MAX_PAGE = 1000


def _ingest(kb: KnowledgeBase, files: list[ReceivedFile]) -> UploadResponse:
    from ingest import ingest_uploads
    from kb.extraction import kind_of

    if all(kind_of(f.path) is None for f in files):  # one bad file never stops the others
        names = ", ".join(f.filename for f in files)
        raise UnsupportedType(f"unsupported file type: {names} (kb reads PDF, text and images)")
    report = ingest_uploads(kb, [(f.path, f.filename) for f in files])
    return UploadResponse(
        results=[from_file_result(r) for r in report.results],
        counts=dict(report.counts),
        failed=report.failed,
        seconds=round(report.seconds, 3),
    )


class DocumentController(Controller):
    path = "/documents"
    tags = ("documents",)

    @post(
        "/",
        status_code=200,
        request_max_body_size=None,  # counted while streaming, against max_upload_bytes
        summary="Upload and ingest one or more files (multipart/form-data)",
    )
    async def upload(self, request: Request[Any, Any, Any], kb: KB) -> UploadResponse:
        directory = await anyio.to_thread.run_sync(upload_dir, kb.settings.data_dir)
        try:
            files = await receive_files(request, directory, kb.settings.max_upload_bytes)
            if not files:
                raise InvalidInput("no files in the request: send one or more multipart file parts")
            return await anyio.to_thread.run_sync(_ingest, kb, files)
        finally:
            await anyio.to_thread.run_sync(shutil.rmtree, directory, True)

    @get("/", sync_to_thread=True, summary="List documents")
    def list_documents(
        self,
        kb: KB,
        offset: Annotated[int, QueryParameter(ge=0)] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE)] = 50,
        source_prefix: FromQuery[str | None] = None,
        kind: FromQuery[Kind | None] = None,
    ) -> DocumentList:
        docs = kb.index.documents(source_prefix=source_prefix, kind=kind)
        page = docs[offset : offset + limit]
        return DocumentList(
            documents=[from_document(d) for d in page], offset=offset, limit=limit, total=len(docs)
        )

    @get("/{doc_id:str}", sync_to_thread=True, summary="One document")
    def get_document(self, doc_id: FromPath[str], kb: KB) -> DocumentOut:
        return from_document(kb.document(doc_id))

    @delete("/{doc_id:str}", status_code=200, sync_to_thread=True, summary="Delete a document")
    def delete_document(self, doc_id: FromPath[str], kb: KB) -> DocumentOut:
        doc = kb.remove(doc_id)
        log.info("removed document %s", doc_id)
        return from_document(doc)
