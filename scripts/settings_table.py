"""Write the README's settings table from the fields declared in kb/settings.py.

.venv/bin/python scripts/settings_table.py            # rewrite the table in README.md
.venv/bin/python scripts/settings_table.py --check    # exit 1 when README.md is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # this checkout's kb, whichever one is installed

from kb.settings import settings_table  # noqa: E402


def with_table(readme: str, table: str) -> str:
    """`readme` with the first table under its `## Settings` heading replaced by `table`."""
    lines = readme.splitlines(keepends=True)
    heading = lines.index("## Settings\n")
    first = next(i for i in range(heading, len(lines)) if lines[i].startswith("|"))
    end = next((i for i in range(first, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "".join(lines[:first]) + table + "".join(lines[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 if stale")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    old = args.readme.read_text(encoding="utf-8")
    new = with_table(old, settings_table())
    if args.check:
        if new != old:
            print(f"{args.readme}: the settings table is stale; run {sys.argv[0]}")
            return 1
        return 0
    if new != old:
        args.readme.write_text(new, encoding="utf-8")
        print(f"{args.readme}: settings table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
