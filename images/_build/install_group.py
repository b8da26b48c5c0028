"""Install one layer group's hash-pinned requirements into the venv, then byte-compile what it added.

Runs inside the image at build time, once per layer group (one RUN each); stdlib only, it
imports nothing from dlbase. Usage::

    python -B install_group.py [--installer uv|pip] --venv /opt/venv --installer-lock LOCK GROUP.txt

Why uv: the default image installs 5.4 GB of CUDA and torch wheels; pip unpacks them one
by one in about 46 s, uv in about 18 s (same wheels, same container). uv must not stay in
the image, and the classic builder has no build-time mounts, so every RUN fetches the uv
wheel pinned with hashes in ``--installer-lock`` (images/_build/installer.lock) with the
venv's pip into a temporary folder, uses it and deletes that folder before the RUN ends:
no layer holds a byte of uv. ``--installer pip`` is the design before, kept as the
baseline that `dlbase bench update` measures against.

Where wheels come from: the WHEELHOUSE build arg (set by `dlbase build`: wheels served on
the build host, checked against the lock there) or, left empty, PIP_INDEX_URL and
PIP_EXTRA_INDEX_URL. Either way every wheel's sha256 must be one the lock pins
(--require-hashes), only wheels are accepted and nothing is resolved (--no-deps):
the lock already is the resolution.

Byte-code: each layer compiles only the .py files of the distributions it installed (their
RECORD lists them) whose .pyc does not exist yet, as checked-hash .pyc: no timestamp, so two
builds write the same bytes, and Python compares the hash with the source at import, so a
.py edited inside a container runs as edited (unchecked-hash .pyc kept running the stale
byte-code; checking costs ~2 ms per MB of source imported, see the README). A lower
layer's file is never rewritten, so no layer shadows another (`dlbase layers --strict`
checks this on the built image).
"""

from __future__ import annotations

import argparse
import compileall
import concurrent.futures
import csv
import functools
import importlib.util
import os
import py_compile
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
import zipfile

PYPI = "https://pypi.org/simple"
#: Environment for every tool this script runs: no byte-code written behind our back, no user
#: or system configuration read, no interpreter downloaded, no network wait without end.
TOOL_ENV = {
    "PYTHONDONTWRITEBYTECODE": "1",
    "PIP_NO_CACHE_DIR": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "UV_NO_CONFIG": "1",
    "UV_PYTHON_DOWNLOADS": "never",
    "UV_HTTP_TIMEOUT": "30",
    "UV_NO_PROGRESS": "1",
}


class InstallError(Exception):
    """A step failed; the message says which, the exit code is the failing tool's."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def source_args(environ: dict[str, str]) -> tuple[list[str], bool]:
    """pip/uv arguments naming where wheels come from, and whether more than one index is used
    (uv then needs pip's best-match behaviour across indexes, see :func:`uv_command`)."""
    wheelhouse = environ.get("WHEELHOUSE", "").strip()
    if wheelhouse:
        return ["--no-index", "--find-links", wheelhouse], False
    args = ["--index-url", environ.get("PIP_INDEX_URL", "").strip() or PYPI]
    extra = environ.get("PIP_EXTRA_INDEX_URL", "").split()
    for url in extra:
        args += ["--extra-index-url", url]
    return args, bool(extra)


def run(cmd: list[str], what: str, env: dict[str, str]) -> None:
    code = subprocess.call(cmd, env=env)
    if code != 0:
        raise InstallError(f"{what} failed (exit {code})", code)


def fetch_uv(python: str, installer_lock: str, tmp: str, env: dict[str, str]) -> str:
    """The uv binary from the hash-pinned wheel, unpacked into ``tmp``. pip picks the wheel
    that fits this machine and refuses one whose sha256 the lock does not pin."""
    wheels = os.path.join(tmp, "wheel")
    sources, _ = source_args(env)
    run([python, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes", "--only-binary=:all:",
         "--dest", wheels, "-r", installer_lock, *sources], "fetching uv (pip download)", env)
    found = [f for f in os.listdir(wheels) if f.startswith("uv-") and f.endswith(".whl")]
    if len(found) != 1:
        raise InstallError(f"expected one uv wheel from {installer_lock}, found {found or 'none'}")
    target = os.path.join(tmp, "uv")
    with zipfile.ZipFile(os.path.join(wheels, found[0])) as wheel:
        member = next((n for n in wheel.namelist() if n.endswith(".data/scripts/uv")), None)
        if member is None:
            raise InstallError(f"{found[0]} holds no uv binary (.data/scripts/uv)")
        with wheel.open(member) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)
    os.chmod(target, 0o755)
    return target


def uv_command(uv: str, python: str, requirements: str, env: dict[str, str]) -> list[str]:
    sources, several = source_args(env)
    # pip takes the best match across all indexes; uv by default stops at the first index that
    # has the name (safer against dependency confusion, but a +cu118 torch lives only on the
    # second). The lock's hashes pin every file, so matching pip here loosens nothing.
    strategy = ["--index-strategy", "unsafe-best-match"] if several else []
    return [uv, "pip", "install", "--python", python, "--no-deps", "--require-hashes", "--only-binary", ":all:",
            "--link-mode", "hardlink", *strategy, *sources, "-r", requirements]


def pip_command(python: str, requirements: str, env: dict[str, str]) -> list[str]:
    sources, _ = source_args(env)
    return [python, "-m", "pip", "install", "--no-cache-dir", "--no-compile", "--require-hashes",
            "--only-binary=:all:", "--no-deps", *sources, "-r", requirements]


def site_dirs() -> list[str]:
    """The venv's site-packages (this script runs with the venv's python)."""
    paths = sysconfig.get_paths()
    return sorted({os.path.realpath(paths["purelib"]), os.path.realpath(paths["platlib"])})


def dist_infos(dirs: list[str]) -> set[str]:
    return {os.path.join(d, name) for d in dirs if os.path.isdir(d)
            for name in os.listdir(d) if name.endswith(".dist-info")}


def recorded_sources(dist_info: str) -> list[str]:
    """The .py files a distribution's RECORD lists, as absolute paths."""
    site = os.path.dirname(dist_info)
    with open(os.path.join(dist_info, "RECORD"), newline="", encoding="utf-8") as fh:
        rows = [row[0] for row in csv.reader(fh) if row]
    return [os.path.normpath(os.path.join(site, p)) for p in rows if p.endswith(".py")]


def needs_compiling(path: str) -> bool:
    """A source with a .pyc already was compiled by a lower layer, from a file no later layer
    changed: compiling it again would copy the .pyc up into this layer."""
    return os.path.isfile(path) and not os.path.exists(importlib.util.cache_from_source(path))


def compile_sources(paths: list[str]) -> bool:
    compile_one = functools.partial(compileall.compile_file, force=True, quiet=1,
                                    invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)
    if len(paths) < 64:
        return all(compile_one(p) for p in paths)
    with concurrent.futures.ProcessPoolExecutor() as pool:
        return all(pool.map(compile_one, paths, chunksize=32))


def name_version(dist_info: str) -> str:
    return os.path.basename(dist_info)[: -len(".dist-info")]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("requirements", help="the group's hash-pinned subset of the lock")
    parser.add_argument("--installer", choices=("uv", "pip"), default="uv")
    parser.add_argument("--installer-lock", help="hash-pinned uv requirement (needed with --installer uv)")
    args = parser.parse_args(argv)
    python = sys.executable
    env = {**os.environ, **TOOL_ENV}
    dirs = site_dirs()
    before = dist_infos(dirs)
    # uv locks the environment with <venv>/.lock; left behind, every layer would rewrite it.
    venv_lock = os.path.join(sys.prefix, ".lock")
    had_venv_lock = os.path.exists(venv_lock)
    tmp = tempfile.mkdtemp(prefix="dlbase-install-")
    started = time.monotonic()
    try:
        if args.installer == "uv":
            if not args.installer_lock:
                raise InstallError("--installer uv needs --installer-lock")
            uv = fetch_uv(python, args.installer_lock, tmp, env)
            # The cache on the same filesystem as the venv: uv hard-links from it, and it goes
            # with the temporary folder.
            run(uv_command(uv, python, args.requirements, env), "uv pip install",
                {**env, "UV_CACHE_DIR": os.path.join(tmp, "cache")})
        else:
            run(pip_command(python, args.requirements, env), "pip install", env)
    except InstallError as exc:
        print(f"install_group: {args.requirements}: {exc}", file=sys.stderr)
        return exc.code
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not had_venv_lock and os.path.exists(venv_lock):
            os.remove(venv_lock)
    installed = time.monotonic()
    added = sorted(dist_infos(dirs) - before)
    sources = sorted({p for d in added for p in recorded_sources(d) if needs_compiling(p)})
    if not compile_sources(sources):
        print(f"install_group: {args.requirements}: byte-compiling failed", file=sys.stderr)
        return 1
    # The same words as pip's last line: build progress and logs look for them.
    print(f"Successfully installed {' '.join(name_version(d) for d in added)} "
          f"(with {args.installer} in {installed - started:.1f}s; {len(sources)} file(s) byte-compiled "
          f"in {time.monotonic() - installed:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
