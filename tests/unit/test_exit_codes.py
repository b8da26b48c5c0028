"""One source for exit codes: dlbase.core.errors. docs/reference.md, docs/failures.md, the verb
tables (README and docs/reference.md) and `dlbase --help` must say exactly what the enum
says; this fails on any drift."""

from __future__ import annotations

import re
from pathlib import Path

from dlbase.define import render
from dlbase.core.errors import EXIT_TEXT, DlbaseError, ExitCode, exit_code_sentence

REPO = Path(__file__).resolve().parents[2]


def _block(text: str) -> str:
    assert render.EXIT_START in text and render.EXIT_END in text, "exit-code markers missing"
    return text.split(render.EXIT_START, 1)[1].split(render.EXIT_END, 1)[0]


def test_every_code_has_a_text_and_a_unique_value():
    assert set(EXIT_TEXT) == set(ExitCode)
    assert len({int(c) for c in ExitCode}) == len(ExitCode)


def test_the_reference_and_failures_docs_carry_the_generated_table():
    table = render.exit_code_table()
    assert render.EXIT_CODE_DOCS == ("docs/reference.md", "docs/failures.md")
    for rel in render.EXIT_CODE_DOCS:
        block = _block((REPO / rel).read_text(encoding="utf-8"))
        assert block.strip() == table.strip(), f"{rel}: exit-code table drifted; run `dlbase render`"
        codes = [int(m) for m in re.findall(r"^\| (\d+) \|", block, re.M)]
        assert codes == [int(c) for c in ExitCode]


def test_help_lists_every_code():
    from dlbase.cli.app import app

    assert exit_code_sentence() in " ".join((app.help or "").split())
    for code in ExitCode:
        assert f"{int(code)} {EXIT_TEXT[code]}" in exit_code_sentence()


def test_every_error_class_uses_a_documented_code():
    import dlbase.core.errors as errors_mod

    classes = [c for c in vars(errors_mod).values() if isinstance(c, type) and issubclass(c, DlbaseError)]
    assert len(classes) > 10
    for cls in classes:
        assert cls.exit_code in EXIT_TEXT, cls


def test_codes_named_in_the_verb_tables_exist():
    valid = {int(c) for c in ExitCode}
    for rel in ("README.md", "docs/reference.md"):
        text = (REPO / rel).read_text(encoding="utf-8")
        rows = [ln for ln in text.splitlines() if ln.startswith("| `dlbase ")]
        assert rows, rel
        for row in rows:
            cell = row.rstrip("|").rsplit("|", 1)[-1]
            for number in re.findall(r"\b(\d+)\b", cell):
                assert int(number) in valid, (rel, row)


def test_the_readme_verb_table_has_one_row_per_verb():
    """The README's front-door table names every verb `dlbase --help` lists, once."""
    from dlbase.cli.app import app

    text = (REPO / "README.md").read_text(encoding="utf-8")
    named = [re.match(r"\| `dlbase ([a-z-]+)", ln)[1] for ln in text.splitlines() if ln.startswith("| `dlbase ")]
    assert sorted(named) == sorted(app.commands), "README verb table and `dlbase --help` disagree"


def test_a_drifted_exit_code_table_in_the_reference_is_rendered_again(cli, project_copy):
    doc = project_copy / "docs" / "reference.md"
    doc.parent.mkdir(exist_ok=True)
    doc.write_text((REPO / "docs" / "reference.md").read_text().replace("| 19 | trust policy not met |",
                                                                        "| 19 | policy |"))
    res = cli("render", "--check")
    assert res.code == 3 and "docs/reference.md" in res.err
    assert cli("render").code == 0
    assert doc.read_text() == (REPO / "docs" / "reference.md").read_text()
