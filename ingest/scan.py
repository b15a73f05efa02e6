"""Finding the files under the paths a user names."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from kb.extraction import is_sidecar


def scan(paths: Iterable[Path]) -> list[Path]:
    """Files named directly, and every file under named folders, in a stable order.

    Hidden files and folders (a leading dot, such as `.git` or the `.kb` data dir) and image
    sidecars (`chart.png.txt`) are not documents of their own; neither are pipes, sockets or
    devices. Symlinked folders are not followed.
    """
    found: dict[Path, None] = {}
    for path in paths:
        if path.is_file():
            found[path] = None
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                candidate = Path(root) / name
                if name.startswith(".") or not candidate.is_file() or is_sidecar(candidate):
                    continue
                found[candidate] = None
    return list(found)
