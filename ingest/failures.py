"""PDFs that cannot be read, remembered by their bytes: an unchanged re-run reports them again
without parsing them (and without starting the extraction process for them alone).

Only failures that the same bytes always give are kept: an encrypted PDF that needs a password,
a malformed one. Not a time-out or a crash, which a quieter machine may not repeat. They are
kept in `kb_dir/unreadable.json` under a key of what reads them (this format and pypdf's
version), so a new pypdf reads every one again. It is a cache: written whole (a temporary file
renamed into place), and a file that is missing, unreadable or of another key is started
afresh. Two runs at once may each keep only their own; the next run finds the rest again.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from importlib.metadata import version
from pathlib import Path

FORMAT = 1
LASTING = ("encrypted", "malformed PDF")  # reasons the same bytes always give


def lasting(reason: str) -> bool:
    return reason.startswith(LASTING)


class UnreadableFiles:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.key = f"{FORMAT}:pypdf {version('pypdf')}"
        self._lock = threading.Lock()
        self._changed = False
        self._known: dict[str, str] = {}
        with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
            saved = json.loads(path.read_text(encoding="utf-8"))
            if saved.get("key") == self.key:
                self._known = {str(k): str(v) for k, v in saved["files"].items()}

    def get(self, doc_id: str) -> str | None:
        """Why the file with these bytes could not be read, when that lasts."""
        with self._lock:
            return self._known.get(doc_id)

    def add(self, doc_id: str, reason: str, message: str) -> None:
        if not lasting(reason):
            return
        with self._lock:
            self._changed = self._changed or self._known.get(doc_id) != message
            self._known[doc_id] = message

    def save(self) -> None:
        """Write what is known, when something was learnt; a failed write loses only the
        cache."""
        with self._lock:
            if not self._changed:
                return
            data = json.dumps({"key": self.key, "files": self._known}, ensure_ascii=False)
            self._changed = False
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".unreadable-", dir=self.path.parent)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(data)
            os.replace(tmp, self.path)
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
