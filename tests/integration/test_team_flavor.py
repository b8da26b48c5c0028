"""A team flavor is a matrix edit that gets the same sharing (issue 10).

In a copy of the project, a flavor `team` (runtime + timm + pycocotools) and its variant are
added to images/matrix.yaml; then the real CLI: `dlbase lock VARIANT` (uv against PyPI, with the
runtime lock as constraints), `dlbase render`, `dlbase check`. Asserted: every package the
team shares with runtime has the same version and hashes, every layer group below `flavor`
has the same subset (the same content-addressed file, so the same COPY and RUN cache and the
same layer), and the flavor group holds timm, pycocotools and what only they pull in.
Marked ``network``; skipped with the reason when PyPI cannot be reached.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path


from dlbase.define.lock import read_lock
from tests.support.pypi import NEEDS_PYPI

pytestmark = NEEDS_PYPI

ROOT = Path(__file__).resolve().parents[2]
RUNTIME = "torch2.6-cu124-runtime-debian12"
TEAM = "torch2.6-cu124-team-debian12"
TEAM_FLAVOR = '''  team:
    description: runtime + timm + pycocotools (a team's own flavor)
    extends: runtime
    packages: {timm: "1.0.31", pycocotools: "2.0.11"}
    apt: []
    compiler: false
    jupyter: false
'''
TEAM_VARIANT = f'''  - name: {TEAM}
    torch: "2.6.0"
    line: cu124
    flavor: team
    python: "3.11"
    base: debian12
'''


def dlbase(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLBASE_ROOT": str(root)}
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=600)


def layer_copies(dockerfile: Path) -> dict[str, str]:
    """group name -> the subset folder its COPY reads (into stage "sources", whence the image takes it)."""
    return {m["group"]: m["src"] for m in re.finditer(
        r"^COPY (?P<src>images/_layers/\d+-(?P<group>[a-z0-9._-]+)-[0-9a-f]{12})/ ", dockerfile.read_text(), re.M)}


def image_stage(text: str) -> str:
    """The Dockerfile from the image's own FROM on (stage "sources" before it lists every folder)."""
    return text[text.index("\nFROM ", text.index(" AS sources\n")):]


def test_a_team_flavor_shares_every_layer_below_its_own(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for rel in ("images", "templates", "ci"):
        shutil.copytree(ROOT / rel, root / rel)
    for rel in ("README.md", ".hadolint.yaml"):
        shutil.copy2(ROOT / rel, root / rel)
    matrix = root / "images" / "matrix.yaml"
    text = matrix.read_text()
    text = text.replace("\n  notebook:\n", "\n" + TEAM_FLAVOR + "  notebook:\n", 1)
    text = text.replace("variants:\n", "variants:\n" + TEAM_VARIANT, 1)
    matrix.write_text(text)

    locked = dlbase(root, "lock", TEAM)
    assert locked.returncode == 0, locked.stdout + locked.stderr
    rendered = dlbase(root, "render")
    assert rendered.returncode == 0, rendered.stderr
    checked = dlbase(root, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr  # every locked package has a group

    runtime = {p.key: p for p in read_lock(root / "images" / RUNTIME / "requirements.lock").packages}
    team = {p.key: p for p in read_lock(root / "images" / TEAM / "requirements.lock").packages}
    shared = runtime.keys() & team.keys()
    assert shared == runtime.keys()  # the team image is runtime plus its own
    assert all((team[k].version, team[k].hashes) == (runtime[k].version, runtime[k].hashes) for k in shared)

    rt_layers = layer_copies(root / "images" / RUNTIME / "Dockerfile")
    team_layers = layer_copies(root / "images" / TEAM / "Dockerfile")
    assert list(team_layers) == [*rt_layers, "flavor"]
    assert {g: team_layers[g] for g in rt_layers} == rt_layers  # same files: same cache, same layers
    (subset,) = (root / team_layers["flavor"]).glob("*.txt")
    own = {line.split("==")[0] for line in subset.read_text().splitlines()
           if "==" in line and not line.startswith("#")}
    assert {"timm", "pycocotools"} <= own and not own & runtime.keys(), own
    # Everything above the flavor's own RUN that differs is metadata and small files, never packages.
    rt_text = image_stage((root / "images" / RUNTIME / "Dockerfile").read_text())
    team_text = image_stage((root / "images" / TEAM / "Dockerfile").read_text())
    cut = rt_text.index("# Once over the whole environment")
    head = team_text[:team_text.index("# Layer group 6 \"flavor\"")]
    assert head == rt_text[:cut].replace(RUNTIME, TEAM) or head.replace(TEAM, RUNTIME) == rt_text[:cut]
