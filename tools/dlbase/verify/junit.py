"""Reading pytest's JUnit XML into test cases, and merging both halves' files into one.

Its own module because JUnit is a file format with its own quirks (junit_family,
skip/xfail spellings, pytest's assertion introspection in messages), apart from what
verify decides with the cases.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass


@dataclass
class Case:
    """One test case read from a JUnit XML file."""

    file: str  # e.g. "test_versions.py"
    name: str  # test function name, parameters kept ("test_flip[hflip]")
    outcome: str  # passed | failed | error | skipped | xfailed
    seconds: float
    message: str = ""  # failure/skip message, first line

    @property
    def nodeid(self) -> str:
        return f"{self.file}::{self.name}"



def strip_param(name: str) -> str:
    """A test's function name without its parameters: ``test_flip[hflip]`` -> ``test_flip``."""
    return name.split("[", 1)[0]


def _first_line(text: str | None, limit: int = 300) -> str:
    """The readable part of a failure/skip message: the assertion's own text (all its
    lines, joined), without pytest's "assert ..." introspection that follows it."""
    text = (text or "").strip()
    for prefix in ("AssertionError: ", "Failed: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    lines: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if lines and line.startswith(("assert ", "+ ", "where ", "+  where")):
            break
        lines.append(line)
    out = " | ".join(lines)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _case_file(classname: str, fallback: str = "") -> str:
    """``tests.image.test_versions`` / ``test_versions.TestX`` -> ``test_versions.py``."""
    parts = [p for p in classname.split(".") if p]
    for part in parts:
        if part.startswith("test_"):
            return f"{part}.py"
    return f"{parts[-1]}.py" if parts else fallback


def parse_junit(data: bytes | str) -> list[Case]:
    """Every testcase of a pytest JUnit XML file (any junit_family), in file order."""
    root = ET.fromstring(data)
    cases: list[Case] = []
    for tc in root.iter("testcase"):
        file = _case_file(tc.get("classname", ""), tc.get("file", ""))
        seconds = float(tc.get("time") or 0)
        outcome, message = "passed", ""
        for child in tc:
            if child.tag == "failure":
                outcome, message = "failed", child.get("message") or child.text or ""
            elif child.tag == "error":
                outcome, message = "error", child.get("message") or child.text or ""
            elif child.tag == "skipped":
                if (child.get("type") or "") == "pytest.xfail":
                    outcome = "xfailed"
                else:
                    outcome = "skipped"
                message = child.get("message") or child.text or ""
                message = re.sub(r"^(Skipped|XFailed|xfail):\s*", "", message.strip())
        cases.append(Case(file=file, name=tc.get("name", ""), outcome=outcome, seconds=seconds,
                          message=_first_line(message)))
    return cases


def merge_junit(parts: list[tuple[str, bytes | None]], name: str) -> bytes:
    """One ``<testsuites>`` holding every half's suites, renamed "host: ..." / "image: ..."."""
    root = ET.Element("testsuites", name=name)
    totals = Counter()
    for half, data in parts:
        if not data:
            continue
        src = ET.fromstring(data)
        suites = [src] if src.tag == "testsuite" else list(src.iter("testsuite"))
        for suite in suites:
            suite.set("name", f"{half}: {suite.get('name', 'pytest')}")
            for key in ("tests", "failures", "errors", "skipped"):
                totals[key] += int(suite.get(key) or 0)
            totals["time"] += float(suite.get("time") or 0)
            root.append(suite)
    for key in ("tests", "failures", "errors", "skipped"):
        root.set(key, str(totals[key]))
    root.set("time", f"{totals['time']:.3f}")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
