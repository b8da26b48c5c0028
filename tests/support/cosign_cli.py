"""Running cosign (2.5 or 3) and the dlbase CLI side by side in the interop tests.

Both interop modules (tests/integration/test_cosign_interop.py for cosign 2.5,
test_cosign3_interop.py for cosign 3) run the real binaries the same way: cosign with a
HOME of its own (its caches never land in the real home), the key passphrase in the
environment and no stdin; dlbase as `python -m dlbase` from the checkout, reading no
Docker credentials. The key pairs they share are made here too.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cosign(cosign_bin: str, home: Path, password: str, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "COSIGN_PASSWORD": password,
           "TUF_ROOT": str(home / "tuf"), "DOCKER_CONFIG": str(home / "docker")}
    return subprocess.run([cosign_bin, *args], env=env, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL, cwd=home)


def dlbase(password: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DLBASE_SIGNING_PASSWORD": password, "DOCKER_CONFIG": "/nonexistent-docker-config"}
    return subprocess.run([sys.executable, "-m", "dlbase", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


def key_pairs(base: Path, cosign_bin: str, home: Path, password: str) -> dict[str, Path]:
    """Three pairs under ``base``: `dlbase` (dlbase key generate), `cosign` (cosign
    generate-key-pair) and `other` (a key nobody trusts here); each folder holds cosign.key/.pub."""
    for name in ("dlbase", "other"):
        res = dlbase(password, "key", "generate", "--out", str(base / name))
        assert res.returncode == 0, res.stderr
    (base / "cosign").mkdir()
    res = cosign(cosign_bin, home, password, "generate-key-pair", "--output-key-prefix", str(base / "cosign" / "cosign"))
    assert res.returncode == 0, res.stderr
    assert (base / "cosign" / "cosign.key").is_file() and (base / "cosign" / "cosign.pub").is_file()
    return {name: base / name for name in ("dlbase", "cosign", "other")}
