"""`/v1/documents`: upload (multipart, streamed to disk), replace, list, get, delete, and the
original file as it was ingested."""

from __future__ import annotations

import logging
import shutil
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any

import anyio.to_thread
from litestar import Controller, Request, delete, get, post, put
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import File

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
from kb.errors import InvalidInput, NotFound, UnsupportedType
from kb.service import KnowledgeBase

if TYPE_CHECKING:
    from ingest import IngestReport
    from kb.types import Document

log = logging.getLogger("kb.api")

MAX_PAGE = 1000


def _ingest(kb: KnowledgeBase, files: list[ReceivedFile]) -> UploadResponse:
    from ingest import ingest_uploads

    _check_types(files)
    return _response(ingest_uploads(kb, [(f.path, f.filename) for f in files]))


def _replace(kb: KnowledgeBase, doc_id: str, file: ReceivedFile) -> UploadResponse:
    from ingest import replace_document

    _check_types([file])
    return _response(replace_document(kb, doc_id, file.path, file.filename))


def _check_types(files: list[ReceivedFile]) -> None:
    from kb.extraction import kind_of

    if all(kind_of(f.path) is None for f in files):  # one bad file never stops the others
        names = ", ".join(f.filename for f in files)
        raise UnsupportedType(f"unsupported file type: {names} (kb reads PDF, text and images)")


def _response(report: IngestReport) -> UploadResponse:
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

    @put(
        "/{doc_id:str}",
        status_code=200,
        request_max_body_size=None,  # counted while streaming, against max_upload_bytes
        summary="Replace a document's content with one uploaded file (multipart/form-data)",
    )
    async def replace(
        self, doc_id: FromPath[str], request: Request[Any, Any, Any], kb: KB
    ) -> UploadResponse:
        """The file becomes the new version of the document: it takes over the document's
        sources, and the old version goes once the new one is committed. 404 when there is
        no such document."""
        await anyio.to_thread.run_sync(kb.document, doc_id)  # 404 before the body is read
        directory = await anyio.to_thread.run_sync(upload_dir, kb.settings.data_dir)
        try:
            files = await receive_files(request, directory, kb.settings.max_upload_bytes)
            if len(files) != 1:
                raise InvalidInput(f"send exactly one multipart file part, not {len(files)}")
            return await anyio.to_thread.run_sync(_replace, kb, doc_id, files[0])
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
        name: Annotated[
            str | None,
            QueryParameter(description="only documents whose title or a source has this text"),
        ] = None,
    ) -> DocumentList:
        docs = kb.index.documents(source_prefix=source_prefix, kind=kind)
        if name:
            docs = [d for d in docs if _named(d, name.casefold())]
        page = docs[offset : offset + limit]
        return DocumentList(
            documents=[from_document(d) for d in page], offset=offset, limit=limit, total=len(docs)
        )

    @get("/{doc_id:str}", sync_to_thread=True, summary="One document")
    def get_document(self, doc_id: FromPath[str], kb: KB) -> DocumentOut:
        return from_document(kb.document(doc_id))

    @get(
        "/{doc_id:str}/original",
        sync_to_thread=True,
        summary="The document's original file, as it was ingested",
        description="Sent inline with the document's media type, for a browser to show "
        "(a PDF opens at a page with `#page=N` on the URL it is shown from).",
    )
    def original(self, doc_id: FromPath[str], kb: KB) -> File:
        doc = kb.document(doc_id)
        path = kb.blobs.path(doc.id)
        if not path.is_file():
            raise NotFound(f"no local copy of the original of document {doc_id}")
        return File(  # text goes as UTF-8, the only text kb reads
            path,
            filename=PurePosixPath(doc.source).name or doc.title,
            content_disposition_type="inline",
            media_type=doc.mime_type,
        )

    @delete("/{doc_id:str}", status_code=200, sync_to_thread=True, summary="Delete a document")
    def delete_document(self, doc_id: FromPath[str], kb: KB) -> DocumentOut:
        doc = kb.remove(doc_id)
        log.info("removed document %s", doc_id)
        return from_document(doc)


def _named(doc: Document, text: str) -> bool:
    return text in doc.title.casefold() or any(text in s.casefold() for s in doc.sources)
