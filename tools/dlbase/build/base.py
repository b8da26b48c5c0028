"""Debian base images (12 bookworm, 13 trixie), made locally with debootstrap + ``docker import``.

No container registry is reachable from the build machines, so ``FROM debian:12``
cannot be pulled. Instead ``debootstrap --variant=minbase`` writes a real Debian root
filesystem from the apt mirror (which is reachable), and it is imported as an image.

A locally imported image has no registry digest; its image ID (``sha256:...``) is the
identity every image built on it records in its labels (``BaseImage.digest_like``). The
ID includes the import time, so it differs between two imports of identical files; the
root filesystem layer's diff ID (``BaseImage.layer``) is the content identity, and the
tar is made deterministic (sorted names, numeric owners, clamped mtimes, caches and logs
stripped) so that it has a chance to match between two bootstraps of the same mirror state.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlbase.core import deadline as deadlines
from dlbase.core import errors, httpget, orphans
from dlbase.define.spec import FILE_EPOCH
from dlbase.engine import MANAGED_LABEL, Engine

DEFAULT_REPOSITORY = "dlbase/debian"
DEFAULT_TAG = "12-minbase"
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
BASE_LABEL = "dlbase.base"
BASE_LABEL_VALUE = "debian12-minbase"
#: Debian suites a bootstrapped base may name (matrix.yaml ``bases.<key>.suite``), by the
#: release they are; the base label says which one an image is (``debian13-minbase``).
SUITE_RELEASES = {"bookworm": "12", "trixie": "13"}
SETUP_HINT = "run `sudo tools/host/setup.sh` (installs debootstrap and Docker)"
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Files debootstrap leaves that vary between runs and that no image needs.
STRIP_GLOBS = (
    "var/cache/apt/*.bin",
    "var/lib/apt/lists/*_*",
    "var/log/*.log",
    "var/log/apt/*",
    "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old",
    "debootstrap",
)
MIRROR_TIMEOUT_S = 15
#: Seconds the mirror check may take in all (a trickling mirror is refused here, by name).
MIRROR_DEADLINE_S = 30.0
#: Seconds debootstrap may take in all; it normally takes 30-90 s.
DEBOOTSTRAP_DEADLINE_S = 900.0
DEBOOTSTRAP_TICK_S = 30.0
#: Seconds debootstrap gets to stop after SIGTERM before its group is killed.
STOP_WAIT_S = 5.0


def base_label(suite: str) -> str:
    """The ``dlbase.base`` label of a base bootstrapped from ``suite`` (debian13-minbase for trixie)."""
    release = SUITE_RELEASES.get(suite)
    return f"debian{release}-minbase" if release else f"debian-{suite}-minbase"


@dataclass(frozen=True)
class BaseImage:
    """A base image on the local daemon.

    ``digest_like`` is what "the base's digest" means for an imported image: its ID.
    ``layer`` is the content digest (diff ID) of its single root filesystem layer.
    ``created`` tells whether this call made it (False: it already existed).
    """

    ref: str
    image_id: str
    digest_like: str
    layer: str | None = None
    created: bool = False


def bootstrap(engine: Engine, *, repository: str = DEFAULT_REPOSITORY, tag: str = DEFAULT_TAG,
              suite: str = DEFAULT_SUITE, mirror: str = DEFAULT_MIRROR, force: bool = False,
              say: Callable[[str], None] | None = None, labels: dict[str, str] | None = None,
              workdir: str | os.PathLike[str] | None = None) -> BaseImage:
    """Make ``repository:tag`` from debootstrap unless it exists; return what it is.

    Idempotent: an existing image is returned as is (no network, no root needed) unless
    ``force``. ``labels`` are added to the standard ones (tests use them to mark what
    they create). ``workdir`` is where the temporary root filesystem goes (it needs a
    few hundred MB and must allow device nodes).
    """
    say = say or (lambda _msg: None)
    ref = f"{repository}:{tag}"
    label_value = base_label(suite)
    if not force and engine.image_exists(ref):
        say(f"{ref} exists; reusing it")
        return _describe(engine, ref, created=False)
    engine.ping()
    _check_prerequisites()
    _check_mirror(mirror, suite)
    image_labels = {MANAGED_LABEL: "true", BASE_LABEL: label_value,
                    "dlbase.base.suite": suite, "dlbase.base.mirror": mirror, **(labels or {})}
    with _temporary_dir(workdir) as tmp:
        rootfs = tmp / "rootfs"
        _debootstrap(suite, rootfs, mirror, say)
        _strip(rootfs)
        tar_path = tmp / "rootfs.tar"
        say("packing the root filesystem")
        _pack(rootfs, tar_path)
        say(f"importing {ref}")
        engine.import_rootfs(tar_path, repository, tag,
                             changes=[f"ENV PATH={IMAGE_PATH}", 'CMD ["bash"]'], labels=image_labels)
    return _describe(engine, ref, created=True)


def _describe(engine: Engine, ref: str, *, created: bool) -> BaseImage:
    info = engine.inspect_image(ref)
    layers = (info.get("RootFS") or {}).get("Layers") or []
    return BaseImage(ref=ref, image_id=info["Id"], digest_like=info["Id"],
                     layer=layers[0] if len(layers) == 1 else None, created=created)


def _check_prerequisites() -> None:
    """debootstrap and tar present, running as root: fail before any slow work."""
    if shutil.which("debootstrap") is None:
        raise errors.Missing("debootstrap is not installed", hint=SETUP_HINT)
    if shutil.which("tar") is None:
        raise errors.Missing("tar is not installed", hint=SETUP_HINT)
    if os.geteuid() != 0:
        raise errors.Missing("debootstrap must run as root to make the base image",
                             hint="run as root (sudo), or load a prebuilt base image")


def _check_mirror(mirror: str, suite: str) -> None:
    """Fetch the suite's Release file so an unreachable mirror fails in seconds, by name."""
    url = f"{mirror.rstrip('/')}/dists/{suite}/Release"
    try:
        answer = httpget.get(deadlines.session(), url, what=f"the {suite} Release file", cap=16 << 20,
                             limit=MIRROR_DEADLINE_S, read_timeout=MIRROR_TIMEOUT_S)
    except errors.DlbaseError as exc:
        raise errors.Unreachable(f"Debian mirror {mirror} is not reachable: {exc.message}",
                                 hint="check the network or pass a reachable mirror") from None
    if answer.status >= 400:
        raise errors.Unreachable(f"Debian mirror {mirror} has no suite {suite!r} (HTTP {answer.status} for {url})",
                                 hint="check --mirror and --suite")


def _debootstrap(suite: str, rootfs: Path, mirror: str, say: Callable[[str], None]) -> None:
    """Run debootstrap in a process group of its own, under one deadline. It fetches with
    wget, which waits on a slow mirror for as long as the mirror trickles; on the deadline,
    an error or a SIGTERM/Ctrl-C to dlbase the whole group (debootstrap and its wget) is
    stopped, and a SIGKILLed dlbase takes debootstrap with it (a parent-death signal)."""
    say(f"debootstrap --variant=minbase {suite} from {mirror}")
    started = time.monotonic()
    proc = subprocess.Popen(
        ["debootstrap", "--variant=minbase", suite, str(rootfs), mirror],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
        stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=orphans.stop_with_parent(signal.SIGTERM))
    lines: list[str] = []
    phase = ""
    assert proc.stdout is not None
    try:
        with deadlines.within(f"debootstrap from {mirror}", DEBOOTSTRAP_DEADLINE_S, tick=DEBOOTSTRAP_TICK_S,
                              on_expire=lambda: orphans.signal_group(proc, signal.SIGTERM)) as deadline:
            for line in proc.stdout:
                lines.append(line.rstrip())
                # One progress message per phase (retrieving, extracting, ...), not per package.
                word = line[3:].split(" ", 1)[0] if line.startswith("I: ") else ""
                if word and word not in ("Validating", "Checking", "Found", "Resolving") and word != phase:
                    phase = word
                    say(line.strip())
            proc.wait()
    except BaseException:
        orphans.stop_group(proc, signal.SIGTERM, STOP_WAIT_S)
        raise
    finally:
        proc.stdout.close()
    if deadline.fired:
        orphans.stop_group(proc, signal.SIGTERM, STOP_WAIT_S)
        raise errors.Unreachable(f"debootstrap from {mirror} did not finish within {deadline.limit:g}s",
                                 details=lines[-20:],
                                 hint=f"the mirror answers very slowly: pass a faster --mirror "
                                      f"(${deadlines.ENV_VAR} sets the deadline in seconds)")
    if proc.returncode != 0:
        log = rootfs / "debootstrap" / "debootstrap.log"
        tail = lines[-20:]
        if log.is_file():
            tail += ["-- debootstrap.log --"] + log.read_text(errors="replace").splitlines()[-20:]
        if any("Failed getting release file" in line or "Couldn't download" in line for line in lines):
            raise errors.Unreachable(f"debootstrap could not download from {mirror}", details=tail)
        raise errors.DlbaseError(f"debootstrap failed (exit {proc.returncode})", details=tail,
                                 hint="debootstrap's last lines are listed with this error; re-run with a different "
                                      "mirror if it is a download error")
    say(f"debootstrap finished in {time.monotonic() - started:.0f}s")


def _strip(rootfs: Path) -> None:
    """Remove apt lists/caches and logs: they vary per run and bloat the base."""
    for pattern in STRIP_GLOBS:
        for path in rootfs.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def _pack(rootfs: Path, tar_path: Path) -> None:
    """Tar the root filesystem reproducibly: sorted names, numeric owners, clamped mtimes.

    GNU tar is used instead of :mod:`tarfile` because it handles device nodes, hard
    links, xattrs and sparse files of a root filesystem correctly and quickly.
    """
    epoch = os.environ.get("SOURCE_DATE_EPOCH", str(FILE_EPOCH))
    cmd = ["tar", "--numeric-owner", "--sort=name", f"--mtime=@{epoch}", "--clamp-mtime",
           "--xattrs", "--one-file-system", "-C", str(rootfs), "-cf", str(tar_path), "."]
    result = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise errors.DlbaseError("packing the root filesystem failed",
                                 details=result.stderr.splitlines()[-20:])


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below ``path`` (deepest first), from /proc/self/mountinfo."""
    prefix = str(path.resolve())
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as handle:
            for line in handle:
                point = line.split()[4].encode().decode("unicode_escape")
                if point == prefix or point.startswith(prefix + "/"):
                    found.append(point)
    except OSError:
        return []
    return sorted(found, key=len, reverse=True)


class _temporary_dir:
    """A temp dir that is always removed -- but never through a mount point.

    A failed debootstrap can leave /proc, /sys or bind-mounted device nodes mounted
    inside the target; a plain rmtree would then delete files of the host. Mounts are
    lazily unmounted first, and if any remain the directory is left for a human.
    """

    def __init__(self, parent: str | os.PathLike[str] | None):
        self.parent = parent

    def __enter__(self) -> Path:
        base = self.parent or os.environ.get("DLBASE_WORKDIR") or "/var/tmp"
        self.path = Path(tempfile.mkdtemp(prefix="dlbase-base-", dir=base))
        return self.path

    def __exit__(self, *exc_info: object) -> None:
        for point in _mounts_under(self.path):
            subprocess.run(["umount", "-l", point], capture_output=True, stdin=subprocess.DEVNULL)
        if _mounts_under(self.path):
            if exc_info[0] is not None:
                return  # do not hide the original failure; the dir stays for a human
            raise errors.DlbaseError(f"{self.path} still has mounts; not removing it",
                                     hint=f"unmount them (findmnt -R {self.path}) and delete it")
        shutil.rmtree(self.path, ignore_errors=True)
