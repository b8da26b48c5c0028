"""Every validator refuses a value with a trailing newline. Python's ``$`` also matches
just before a final newline, so a ``^...$`` pattern let ``"h200-fleet\\n"`` or
``"runtime\\n"`` through (from YAML's ``"...\\n"``, a file read without strip, an env
value); the validators anchor with ``\\Z``. Each case checks the good value passes, so
the failure of the bad one is about the newline alone."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from dlbase.core import digest, reference, validate
from dlbase.core.errors import DlbaseError
from dlbase.define import bakefile, compat, compat_add, matrix, tags
from dlbase.engine import launcher
from dlbase.trust import policy

SHA = "sha256:" + "ab" * 32


def _refused(check: Callable[[str], Any], value: str) -> bool:
    try:
        result = check(value)
    except (DlbaseError, ValueError):
        return True
    return result is None or result is False


CASES: list[tuple[str, Callable[[str], Any], str]] = [
    ("repository host", lambda v: reference.parse(v + "/dlbase/pytorch"), "registry.example.org"),
    ("tag", lambda v: validate.tag(v, where="--tag"), "2.6-cu124"),
    ("digest", lambda v: digest.is_digest(v), SHA),
    ("docker tag", lambda v: tags.moving_tag(torch="2.6.0", line="cu124", flavor="runtime", os_name=v), "debian12"),
    ("bake target", lambda v: bakefile.target_name(v), "torch2.6-cu124"),
    ("env name", lambda v: launcher.parse_env([v + "=1"], {}), "HF_HOME"),
    ("user", lambda v: launcher.check_user(v), "1000:1000"),
    ("trust label", lambda v: policy.LABEL_RE.match(v), "h200-fleet"),
    ("driver", lambda v: policy.check_driver(v, "--min-driver") is None, "550.54.14"),
    ("age", lambda v: policy.parse_age(v), "30d"),
    ("matrix name", lambda v: matrix.NAME_RE.match(v), "runtime"),
    ("python", lambda v: matrix.PY_RE.match(v), "3.11"),
    ("line", lambda v: matrix.LINE_RE.match(v), "cu124"),
    ("apt package", lambda v: matrix.APT_RE.match(v), "libgomp1"),
    ("tool version", lambda v: matrix.VERSION_RE.match(v), "0.5.11"),
    ("compat line", lambda v: compat.LINE_RE.match(v), "cu124"),
    ("compat library", lambda v: compat_add._LIBRARY_RE["cudnn"].match(v), "nvidia-cudnn-cu12"),
]


@pytest.mark.parametrize("check, good", [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_a_trailing_newline_is_refused(check: Callable[[str], Any], good: str) -> None:
    assert not _refused(check, good), good
    assert _refused(check, good + "\n"), repr(good + "\n")


def test_the_trimming_validators_hand_back_the_value_without_the_newline() -> None:
    """A reference, repository or image id typed with whitespace is trimmed, not refused:
    what they hand on is the trimmed value, so the newline reaches nothing."""
    ref = reference.parse("registry.example.org/dlbase/pytorch:2.6\n")
    assert (ref.registry, ref.repository, ref.tag) == ("registry.example.org", "dlbase/pytorch", "2.6")
    assert validate.repository("dlbase/pytorch\n") == "dlbase/pytorch"
    assert validate.image_ref("abcdef12\n") == "abcdef12"
    with pytest.raises(DlbaseError, match="is not a valid tag"):  # inside, the newline is the tag's
        reference.parse("dlbase/pytorch:2.6\n@" + SHA)
