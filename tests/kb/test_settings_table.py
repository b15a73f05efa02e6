"""The README's settings table documents exactly the settings the code has, with their defaults;
it is generated from kb/settings.py by scripts/settings_table.py."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

from kb.settings import OTHER_VARIABLES, Settings, settings_table

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SCRIPT = ROOT / "scripts" / "settings_table.py"


def readme_table(text: str) -> list[str]:
    """The lines of the first table under the README's `## Settings` heading."""
    lines = text.splitlines()
    after = lines[lines.index("## Settings") :]
    first = next(i for i, line in enumerate(after) if line.startswith("|"))
    table = []
    for line in after[first:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return table


def readme_defaults() -> dict[str, str]:
    """Variable -> the default column, for each row of the README's settings table."""
    rows = {}
    for line in readme_table(README.read_text(encoding="utf-8"))[2:]:
        variable, default, _meaning = (cell.strip() for cell in line.strip("|").split(" | ", 2))
        assert variable.startswith("`") and variable.endswith("`"), line
        rows[variable.strip("`")] = default
    return rows


def expected_default(f: dataclasses.Field[object]) -> str:
    spec = f.metadata["spec"]
    if spec.shown:
        return str(spec.shown)
    if f.default is None or f.default == ():
        return "unset"
    value = f.default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def test_every_setting_is_in_the_readme_with_its_default() -> None:
    rows = readme_defaults()
    for f in dataclasses.fields(Settings):
        variable = f.metadata["spec"].env
        assert variable in rows, f"{variable} ({f.name}) is missing from the README table"
        assert rows[variable] == expected_default(f), variable


def test_readme_lists_no_variable_the_code_does_not_have() -> None:
    known = {f.metadata["spec"].env for f in dataclasses.fields(Settings)}
    known |= {variable for variable, _, _ in OTHER_VARIABLES}
    assert set(readme_defaults()) - known == set()


def test_each_setting_has_its_own_variable_and_description() -> None:
    specs = [f.metadata["spec"] for f in dataclasses.fields(Settings)]
    variables = [s.env for s in specs]
    assert len(set(variables)) == len(variables)
    assert all(v.startswith(("KB_", "ANTHROPIC_")) for v in variables)
    assert all(s.doc.strip() and "|" not in s.doc and "\n" not in s.doc for s in specs)


def test_variables_read_outside_settings_are_read_by_the_code() -> None:
    sources = [
        p.read_text(encoding="utf-8")
        for package in ("kb", "ingest", "api", "eval")
        for p in (ROOT / package).rglob("*.py")
        if p != ROOT / "kb" / "settings.py"
    ]
    for variable, _, _ in OTHER_VARIABLES:
        assert any(f'"{variable}"' in source for source in sources), variable


def test_readme_table_is_the_generated_one() -> None:
    current = readme_table(README.read_text(encoding="utf-8"))
    assert current == settings_table().splitlines()


def test_script_checks_and_rewrites_the_table(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    text = README.read_text(encoding="utf-8")
    stale = text.replace("| `KB_SEARCH_K` | `5` |", "| `KB_SEARCH_K` | `7` |")
    assert stale != text
    readme.write_text(stale + "\n## After\n\n| other | table |\n", encoding="utf-8")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, str(SCRIPT), "--readme", str(readme), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    assert run("--check").returncode == 1
    assert run().returncode == 0
    assert readme.read_text(encoding="utf-8") == text + "\n## After\n\n| other | table |\n"
    assert run("--check").returncode == 0
