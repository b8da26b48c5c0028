"""Facts stated once: a test per fact that greps the source for a copy typed elsewhere.

Each fact has one home; these fail when a literal copy appears outside it, which is how
two places drift apart (a help text promising exit 19 after the code became 21).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from click.testing import CliRunner

from dlbase.cli.app import app
from dlbase.core.errors import ExitCode

PACKAGE = Path(__file__).resolve().parents[2] / "tools" / "dlbase"
EXIT_NUMBER = re.compile(r"\b[Ee]xits? (?:code )?\d+|\(exit \d+")


def _help_texts(path: Path) -> list[tuple[int, str]]:
    """The help texts of a CLI module: its click commands' docstrings and every ``help=`` string."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef) and any("command" in ast.unparse(d) for d in node.decorator_list):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                found.append((node.lineno, doc))
        elif isinstance(node, ast.keyword) and node.arg == "help" and isinstance(node.value, ast.Constant):
            found.append((node.value.lineno, str(node.value.value)))
    return found


def test_help_texts_name_exit_codes_and_never_retype_their_numbers() -> None:
    """An exit number in a help text is ``{NAME}`` filled from core/errors.py (cli/helptext.py)."""
    retyped = [f"{path.relative_to(PACKAGE)}:{line}: {EXIT_NUMBER.search(text).group(0)}"
               for path in sorted((PACKAGE / "cli").rglob("*.py"))
               for line, text in _help_texts(path) if EXIT_NUMBER.search(text)]
    assert not retyped, "help texts retype exit numbers; write {NAME} and wrap with exits()/@with_exit_codes:\n" \
        + "\n".join(retyped)


def test_a_help_text_shows_the_number_core_errors_gives() -> None:
    out = CliRunner().invoke(app, ["trust", "--help"], terminal_width=200).output
    assert f"Exit {int(ExitCode.UNSIGNED)} unsigned" in out and f"{int(ExitCode.POLICY)} the policy is not met" in out
    assert "{" not in out


def _string_constants(path: Path) -> list[tuple[int, str]]:
    return [(node.lineno, node.value) for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)]


def test_image_label_names_are_written_only_in_define_labels() -> None:
    """A label dlbase writes and reads is ``labels.NAME`` everywhere but dlbase/define/labels.py,
    and the Dockerfile's LABEL step is rendered from its build-argument map."""
    from dlbase.define import labels

    names = {v for k, v in vars(labels).items() if k.isupper() and isinstance(v, str) and "." in v} - {labels.OCI}
    home = PACKAGE / "define" / "labels.py"
    stray = [f"{path.relative_to(PACKAGE)}:{line}: {value}"
             for path in sorted(PACKAGE.rglob("*.py")) if path != home and "suites" not in path.parts
             for line, value in _string_constants(path) if value in names]
    assert not stray, "label names typed outside dlbase/define/labels.py:\n" + "\n".join(stray)
    template = (PACKAGE.parents[1] / "templates" / "partials" / "labels.j2").read_text(encoding="utf-8")
    typed = [n for n in [*labels.BUILD_ARGS, *labels.BUILD_ARGS.values()] if n in template]
    assert not typed, f"partials/labels.j2 types build-time labels or their arguments: {typed}"


def test_image_media_types_are_written_only_in_registry_mediatypes() -> None:
    home = PACKAGE / "registry" / "mediatypes.py"
    stray = [f"{path.relative_to(PACKAGE)}:{line}: {value}"
             for path in sorted(PACKAGE.rglob("*.py")) if path != home
             for line, value in _string_constants(path)
             if value.startswith(("application/vnd.oci.", "application/vnd.docker."))]
    assert not stray, "OCI/Docker media types typed outside dlbase/registry/mediatypes.py:\n" + "\n".join(stray)


def test_the_images_platform_is_written_only_in_define_lock() -> None:
    from dlbase.define.lock import PLATFORM

    home = PACKAGE / "define" / "lock.py"
    stray = [f"{path.relative_to(PACKAGE)}:{line}" for path in sorted(PACKAGE.rglob("*.py")) if path != home
             for line, value in _string_constants(path) if value == PLATFORM]
    assert not stray, f"{PLATFORM} typed outside dlbase/define/lock.py: {stray}"


def test_the_image_root_workspace_and_notebook_port_are_written_only_in_core_inimage() -> None:
    """The host side (launcher, builder, layering) and every template read them from core/inimage.py."""
    from dlbase.core.inimage import IMAGE_ROOT, NOTEBOOK_PORT, WORKSPACE

    home = PACKAGE / "core" / "inimage.py"
    stray = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == home or "suites" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            value = getattr(node, "value", None) if isinstance(node, ast.Constant) else None
            if (isinstance(value, str) and value.startswith((IMAGE_ROOT, WORKSPACE))) or \
                    (type(value) is int and value == NOTEBOOK_PORT):
                stray.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {value!r}")
    for template in sorted((PACKAGE.parents[1] / "templates").rglob("*.j2")):
        text = template.read_text(encoding="utf-8")
        stray += [f"{template.name}: {fact}" for fact in (IMAGE_ROOT, WORKSPACE, str(NOTEBOOK_PORT)) if fact in text]
    assert not stray, "typed outside dlbase/core/inimage.py:\n" + "\n".join(stray)
