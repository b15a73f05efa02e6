"""The ingest stage: files in, documents committed (`ingest_paths` for files and folders,
`ingest_uploads` for the API's uploads, `replace_document` for a new version of one document).
Other stages use these names, never the modules."""

from ingest.pipeline import (
    IngestReport,
    Progress,
    ingest_paths,
    ingest_uploads,
    replace_document,
)

__all__ = ["IngestReport", "Progress", "ingest_paths", "ingest_uploads", "replace_document"]
