"""ui.table prints cells as text: square brackets in test ids and paths are not markup."""

from __future__ import annotations

import io

import pytest
from dlbase import ui
from rich.console import Console


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    buf = io.StringIO()
    monkeypatch.setattr(ui, "out", Console(file=buf, width=200, highlight=False, soft_wrap=False))
    return buf


def test_a_parametrised_test_id_prints_whole(captured: io.StringIO) -> None:
    ui.table(["check", "result"], [["test_x[seed0-97x131-coco]", "passed"]], status_column="result")
    assert "test_x[seed0-97x131-coco]" in captured.getvalue()


def test_a_cell_that_looks_like_a_closing_tag_does_not_raise(captured: io.StringIO) -> None:
    ui.table(["path", "status"], [["[/tmp]", "failed: [bold]x[/bold]"]], status_column="status")
    text = captured.getvalue()
    assert "[/tmp]" in text and "failed: [bold]x[/bold]" in text


def test_the_status_column_is_still_coloured() -> None:
    buf = io.StringIO()
    console = Console(file=buf, width=120, force_terminal=True, color_system="standard")
    original = ui.out
    ui.out = console
    try:
        ui.table(["check", "result"], [["a", "failed"], ["b", "passed"]], status_column="result")
    finally:
        ui.out = original
    text = buf.getvalue()
    assert "\x1b[31mfailed" in text and "\x1b[32mpassed" in text
