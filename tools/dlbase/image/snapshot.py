"""A content snapshot of an image: a digest of every file, and the packages installed.

The image's filesystem is exported from a container that is created but never started
(:meth:`Engine.exported_filesystem`) and read as a tar *stream*: each regular file is
hashed in 1 MiB blocks as it passes, so a 6 GB image costs a few MB of memory. Every
entry is reduced to what decides its content and behaviour:

* regular file: mode, owner, sha256 of the bytes
* symlink: its target; hard link: the path it links to
* directory / device / fifo: type, mode, owner

Modification times are deliberately left out: every ``RUN`` step stamps the files it
writes with the wall clock, so two builds of identical content always differ there.

From the same pass the installed packages are read: Python distributions from each
``*.dist-info/METADATA`` (name, version) with the sha256 of the distribution's
``RECORD`` (pip writes a hash of every installed file into it, so it digests the
installed content of the package), and Debian packages from ``/var/lib/dpkg/status``.

:data:`EXCLUDED` is the short, documented list of paths that legitimately differ
between two builds of the same inputs; both ``rebuild-check`` and ``diff`` skip them.
"""

from __future__ import annotations

import email.parser
import fnmatch
import hashlib
import re
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from typing import IO

from packaging.utils import canonicalize_name

from dlbase.engine import Engine
from dlbase.image import inventory

# path pattern (as in the exported tar, no leading slash) -> why it legitimately varies.
EXCLUDED: dict[str, str] = {
    "etc/hostname": "written by the daemon into every container (the container's ID); not image content",
    "etc/hosts": "written by the daemon into every container; not image content",
    "etc/resolv.conf": "written by the daemon from the host's resolver; not image content",
    ".dockerenv": "marker the daemon adds to every container; not image content",
    "etc/shadow": "useradd stores the day of the password change (days since 1970): differs when two "
                  "builds run on different days",
    "etc/shadow-": "backup copy of etc/shadow made by useradd (same day field)",
    "var/cache/ldconfig/aux-cache": "ldconfig's cache of file inode/ctime data, rewritten by every apt "
                                    "install; ld.so.cache itself is compared",
}

_SITE_PACKAGES_META = re.compile(r"^(?P<dir>.*/site-packages/[^/]+\.dist-info)/(?P<file>METADATA|RECORD)$")
_BLOCK = 1 << 20


@dataclass
class Snapshot:
    """What an image contains: ``files`` (path -> entry text), ``pypi`` (canonical name ->
    {name, version, record_sha256, path}), ``deb`` (package -> version), ``excluded``
    (paths seen but skipped)."""

    files: dict[str, str] = field(default_factory=dict)
    pypi: dict[str, dict] = field(default_factory=dict)
    deb: dict[str, str] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)

    @property
    def total_files(self) -> int:
        return len(self.files)


def is_excluded(path: str) -> bool:
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in EXCLUDED)


def take(engine: Engine, image: str, *, labels: dict[str, str] | None = None) -> Snapshot:
    """Export ``image`` through a throw-away container and snapshot the stream."""
    with engine.exported_filesystem(image, labels=labels) as stream:
        return from_tar(stream)


def from_tar(fileobj: IO[bytes]) -> Snapshot:
    """Snapshot a tar stream (read once, front to back)."""
    snap = Snapshot()
    metas: dict[str, tuple[str, str]] = {}
    records: dict[str, str] = {}
    with tarfile.open(fileobj=fileobj, mode="r|", bufsize=_BLOCK) as tar:
        for member in tar:
            path = tar_path(member.name)
            if not path or path == ".":
                continue
            if is_excluded(path):
                snap.excluded.append(path)
                continue
            owner = f"{member.uid}:{member.gid}"
            mode = f"{member.mode & 0o7777:04o}"
            if member.isreg():
                handle = tar.extractfile(member)
                digest = hashlib.sha256()
                keep = bytearray() if _wanted_text(path) else None
                assert handle is not None
                while True:
                    block = handle.read(_BLOCK)
                    if not block:
                        break
                    digest.update(block)
                    if keep is not None:
                        keep.extend(block)
                hexdigest = digest.hexdigest()
                snap.files[path] = f"file {mode} {owner} sha256:{hexdigest}"
                if keep is not None:
                    _collect(path, bytes(keep), hexdigest, metas, records, snap)
            elif member.issym():
                snap.files[path] = f"symlink -> {member.linkname}"
            elif member.islnk():
                snap.files[path] = f"hardlink -> {tar_path(member.linkname)}"
            elif member.isdir():
                snap.files[path] = f"dir {mode} {owner}"
            else:
                snap.files[path] = f"special type={member.type!r} {mode} {owner}"
    for dist_dir, (name, version) in metas.items():
        snap.pypi[canonicalize_name(name)] = {"name": name, "version": version,
                                              "record_sha256": records.get(dist_dir), "path": dist_dir}
    return snap


def tar_path(name: str) -> str:
    """A tar member's path as the image has it, without a leading ``./`` or ``/``.

    Only those prefixes go: ``lstrip("./")`` would strip characters, turning
    ``.dockerenv`` into ``dockerenv`` and ``.cache/x`` into ``cache/x``."""
    while name.startswith("./"):
        name = name[2:]
    name = name.lstrip("/").rstrip("/")
    return "" if name == "." else name


def _wanted_text(path: str) -> bool:
    return path == "var/lib/dpkg/status" or _SITE_PACKAGES_META.match(path) is not None


def _collect(path: str, data: bytes, hexdigest: str, metas: dict[str, tuple[str, str]],
             records: dict[str, str], snap: Snapshot) -> None:
    if path == "var/lib/dpkg/status":
        snap.deb.update(parse_dpkg_status(data.decode("utf-8", errors="replace")))
        return
    match = _SITE_PACKAGES_META.match(path)
    if not match:
        return
    if match["file"] == "RECORD":
        records[match["dir"]] = hexdigest
    else:
        msg = email.parser.HeaderParser().parsestr(data.decode("utf-8", errors="replace"))
        if msg.get("Name") and msg.get("Version"):
            metas[match["dir"]] = (str(msg["Name"]), str(msg["Version"]))


def parse_dpkg_status(text: str) -> dict[str, str]:
    """{package: version} of the installed packages in a dpkg status file (a package of
    another architecture than amd64/all as ``name:arch``)."""
    return {(deb.name if deb.arch in ("", "all", "amd64") else f"{deb.name}:{deb.arch}"): deb.version
            for deb in inventory.parse_dpkg_status(text)}


# --------------------------------------------------------------------------- comparison


@dataclass
class Changes:
    """Differences between two snapshots, each a sorted list."""

    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[tuple[str, str, str]] = field(default_factory=list)  # (key, before, after)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def to_dict(self) -> dict:
        return {"added": self.added, "removed": self.removed,
                "changed": [{"name": k, "before": a, "after": b} for k, a, b in self.changed]}


def compare_maps(a: dict[str, str], b: dict[str, str]) -> Changes:
    return Changes(added=sorted(set(b) - set(a)), removed=sorted(set(a) - set(b)),
                   changed=sorted((k, a[k], b[k]) for k in set(a) & set(b) if a[k] != b[k]))


def pypi_entries(snap: Snapshot, *, with_hashes: bool = True) -> dict[str, str]:
    """name -> "version" (or "version record:<sha256-12>" with hashes), for comparing."""
    out = {}
    for key, info in snap.pypi.items():
        value = info["version"]
        if with_hashes and info.get("record_sha256"):
            value += f" (RECORD sha256:{info['record_sha256'][:12]})"
        out[info["name"] if key == canonicalize_name(info["name"]) else key] = value
    return out


def compare(a: Snapshot, b: Snapshot, *, with_hashes: bool = True) -> dict[str, Changes]:
    """Grouped differences: python packages, debian packages, files."""
    return {
        "python packages": compare_maps(pypi_entries(a, with_hashes=with_hashes),
                                        pypi_entries(b, with_hashes=with_hashes)),
        "debian packages": compare_maps(a.deb, b.deb),
        "files": compare_maps(a.files, b.files),
    }


def group_paths(paths: list[str], depth: int = 3) -> dict[str, list[str]]:
    """Group paths by their first ``depth`` components (for readable listings)."""
    groups: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        parts = path.split("/")
        groups["/" + "/".join(parts[:min(depth, max(1, len(parts) - 1))])].append(path)
    return dict(sorted(groups.items()))
