"""Read an image's package inventory from inside it (sent as `python -c`: stdlib only).

Prints one marked JSON line: the Python distributions of the interpreter on PATH (the
image's venv), the text of /var/lib/dpkg/status and of /etc/os-release. Parsing stays
on the host (dlbase.image.inventory), so this script only reads files.
"""

import json
import sys


def _text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None


def probe():
    from importlib import metadata

    dists = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            dists[name] = dist.version
    return {"python": dists, "dpkg_status": _text("/var/lib/dpkg/status"),
            "os_release": _text("/etc/os-release") or _text("/usr/lib/os-release"),
            "executable": sys.executable}


if __name__ == "__main__":
    sys.stdout.write("DLBASE_INVENTORY " + json.dumps(probe(), sort_keys=True) + "\n")
