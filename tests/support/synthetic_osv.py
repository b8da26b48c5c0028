"""Synthetic OSV archives of realistic size, for timing `dlbase scan` against a full database.

OSV's real all.zip files cannot be downloaded on these machines, so this writes archives
shaped like them: one JSON member per record, PyPI records with the long `versions`
lists PyPA publishes, Debian records with one affected entry per release, and names drawn
from a pool that includes the packages an image really has (so matching does real work).
Run: python -m tests.support.synthetic_osv OUT_DIR [PYPI_COUNT DEBIAN_COUNT]
"""

from __future__ import annotations

import json
import random
import sys
import zipfile
from pathlib import Path

DETAILS = ("A flaw was found in the handling of crafted input that allows a remote attacker to cause "
           "a denial of service or possibly execute arbitrary code. ") * 4


def _pypi_record(i: int, name: str, rng: random.Random) -> dict:
    major = rng.randint(0, 5)
    versions = [f"{a}.{b}.{c}" for a in range(major + 1) for b in range(6) for c in range(3)][:rng.randint(20, 120)]
    return {"schema_version": "1.6.0", "id": f"PYSEC-SYN-{i}", "modified": f"2026-{rng.randint(1, 11):02d}-"
            f"{rng.randint(1, 28):02d}T00:00:00Z", "published": "2025-01-01T00:00:00Z",
            "aliases": [f"CVE-2025-{100000 + i}"], "details": DETAILS,
            "affected": [{"package": {"ecosystem": "PyPI", "name": name, "purl": f"pkg:pypi/{name}"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"},
                                                                     {"fixed": f"{major + 1}.0.0"}]}],
                          "versions": versions}],
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H"}],
            "references": [{"type": "WEB", "url": f"https://example.org/advisory/{i}"}] * 3}


def _debian_record(i: int, name: str, rng: random.Random) -> dict:
    affected = []
    for release, suffix in (("Debian:11", "deb11u"), ("Debian:12", "deb12u"), ("Debian:13", "")):
        events = [{"introduced": "0"}]
        if rng.random() < 0.7:
            events.append({"fixed": f"{rng.randint(1, 3)}.{rng.randint(0, 40)}-{rng.randint(1, 9)}"
                                    + (f"+{suffix}{rng.randint(1, 15)}" if suffix else "")})
        affected.append({"package": {"ecosystem": release, "name": name, "purl": f"pkg:deb/debian/{name}?arch=source"},
                         "ranges": [{"type": "ECOSYSTEM", "events": events}]})
    return {"schema_version": "1.6.0", "id": f"DEBIAN-CVE-SYN-{i}", "modified": "2026-11-30T00:00:00Z",
            "published": "2024-01-01T00:00:00Z", "upstream": [f"CVE-2024-{100000 + i}"],
            "details": DETAILS[:300], "affected": affected}


def write(out: Path, pypi_count: int = 20000, debian_count: int = 40000, *, real_pypi: list[str] = (),
          real_debian: list[str] = (), seed: int = 19) -> dict[str, Path]:
    rng = random.Random(seed)
    pypi_names = list(real_pypi) + [f"synthetic-project-{n}" for n in range(8000)]
    debian_names = list(real_debian) + [f"synthetic-src-{n}" for n in range(3000)]
    paths = {}
    for eco, count, names, make in (("PyPI", pypi_count, pypi_names, _pypi_record),
                                    ("Debian", debian_count, debian_names, _debian_record)):
        path = out / eco / "all.zip"
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for i in range(count):
                record = make(i, rng.choice(names), rng)
                zf.writestr(f"{record['id']}.json", json.dumps(record, indent=2))
        paths[eco] = path
    return paths


if __name__ == "__main__":
    target = Path(sys.argv[1])
    counts = [int(x) for x in sys.argv[2:4]] or [20000, 40000]
    real_py = ["torch", "numpy", "pillow", "jinja2", "pip", "urllib3", "requests", "scipy", "sympy", "networkx"]
    real_deb = ["glibc", "apt", "systemd", "openssl", "zlib", "xz-utils", "tar", "gnutls28", "python3.11",
                "util-linux", "shadow", "pam", "ncurses", "bash", "coreutils", "perl", "libgcrypt20", "expat"]
    for eco, p in write(target, *counts, real_pypi=real_py, real_debian=real_deb).items():
        print(eco, p, p.stat().st_size)
