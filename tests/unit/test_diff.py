"""Snapshots of a tar stream and their comparison (no daemon)."""

from __future__ import annotations

import io
import tarfile

from dlbase.image import snapshot

SITE = "opt/venv/lib/python3.11/site-packages"
DPKG = "Package: tini\nStatus: install ok installed\nArchitecture: amd64\nVersion: 0.19.0-1\n\n" \
       "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n"


def make_tar(files: dict[str, bytes], links: dict[str, str] | None = None, mode: int = 0o644) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 12345
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    buf.seek(0)
    return buf


def base_files(version: str = "1.0", body: bytes = b"x = 1\n") -> dict[str, bytes]:
    return {
        f"{SITE}/pkg-{version}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: pkg\nVersion: {version}\n".encode(),
        f"{SITE}/pkg-{version}.dist-info/RECORD": b"pkg/__init__.py,sha256=abc,6\n" + body,
        f"{SITE}/pkg/__init__.py": body,
        "var/lib/dpkg/status": DPKG.encode(),
        "etc/hostname": b"abc123\n",
    }


def test_snapshot_reads_files_packages_and_excludes():
    snap = snapshot.from_tar(make_tar(base_files(), links={"usr/bin/python": "python3.11"}))
    assert snap.pypi["pkg"]["version"] == "1.0" and snap.pypi["pkg"]["record_sha256"]
    assert snap.deb == {"tini": "0.19.0-1"}
    assert "etc/hostname" in snap.excluded and "etc/hostname" not in snap.files
    assert snap.files["usr/bin/python"] == "symlink -> python3.11"
    assert snap.files[f"{SITE}/pkg/__init__.py"].startswith("file 0644 0:0 sha256:")


def test_mtime_does_not_matter_content_and_mode_do():
    a = snapshot.from_tar(make_tar(base_files()))
    b = snapshot.from_tar(make_tar(base_files()))
    assert all(c.empty for c in snapshot.compare(a, b).values())
    c = snapshot.from_tar(make_tar(base_files(), mode=0o755))
    assert len(snapshot.compare(a, c)["files"].changed) == len(a.files)


def test_compare_groups_packages_and_files():
    a = snapshot.from_tar(make_tar(base_files("1.0")))
    b = snapshot.from_tar(make_tar({**base_files("2.0", b"x = 2\n"), "new/file": b"n"}))
    groups = snapshot.compare(a, b)
    assert [k for k, _x, _y in groups["python packages"].changed] == ["pkg"]
    assert groups["debian packages"].empty
    files = groups["files"]
    assert "new/file" in files.added and f"{SITE}/pkg-1.0.dist-info/METADATA" in files.removed
    assert [k for k, _x, _y in files.changed] == [f"{SITE}/pkg/__init__.py"]
    assert "/opt/venv/lib" in snapshot.group_paths([f"{SITE}/pkg/__init__.py"])


def test_every_exclusion_matches_what_an_export_holds():
    """Each excluded pattern matches the path as `docker export` writes it (with or without
    a leading ./), so it is skipped; nothing else is."""
    paths = [p for p in snapshot.EXCLUDED if "*" not in p]
    for prefix in ("", "./"):
        snap = snapshot.from_tar(make_tar({prefix + p: b"varies" for p in paths} | {prefix + "etc/kept": b"k"}))
        assert sorted(snap.excluded) == sorted(paths)
        assert list(snap.files) == ["etc/kept"]


def test_dot_files_keep_their_names():
    snap = snapshot.from_tar(make_tar({"./.cache/x": b"1", ".config": b"2", "./etc/.pwd.lock": b"3"},
                                      links={"./.link": ".cache/x"}))
    assert sorted(snap.files) == [".cache/x", ".config", ".link", "etc/.pwd.lock"]
    assert snap.files[".link"] == "symlink -> .cache/x"


def test_a_hard_link_names_its_dot_target():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("./.cache/a")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"a"))
        link = tarfile.TarInfo("./b")
        link.type, link.linkname = tarfile.LNKTYPE, "./.cache/a"
        tar.addfile(link)
    buf.seek(0)
    assert snapshot.from_tar(buf).files["b"] == "hardlink -> .cache/a"
