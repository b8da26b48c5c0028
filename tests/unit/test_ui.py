"""ui.table prints cells as text: square brackets in test ids and paths are not markup."""

from __future__ import annotations

import io

import pytest
from dlbase.cli import ui
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


def test_messages_print_user_text_verbatim(capsys) -> None:
    """An error naming a path like [/tmp] once raised inside rich; a tag like :abc: became an emoji."""
    from dlbase.cli import ui

    ui.error("no image x:thumbs_up: in [/tmp]", hint="look in [bold]here[/bold]")
    ui.warn("[/oops] :smile:")
    ui.info("[red]plain[/red]")
    err = capsys.readouterr().err
    assert "x:thumbs_up: in [/tmp]" in err and "[bold]here[/bold]" in err
    assert "[/oops] :smile:" in err and "[red]plain[/red]" in err


def test_build_output_that_looks_like_markup_is_printed_as_is(capsys) -> None:
    """A build log line such as `[/usr/lib]` is shown verbatim, not parsed as a rich tag (it raised)."""
    from dlbase.engine import BuildEvent
    from dlbase.cli.progress import BuildProgress

    progress = BuildProgress(quiet=False, verbose=True)
    progress.event(BuildEvent(kind="output", text="copying [/usr/lib] :smile:"))
    progress.say("wheelhouse at [/tmp/x]")
    err = capsys.readouterr().err
    assert "copying [/usr/lib] :smile:" in err and "wheelhouse at [/tmp/x]" in err
