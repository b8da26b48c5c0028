"""Derive a torch release's compatibility entry from its wheels' metadata, and write it.

Why: compat.yaml's per-release facts (CUDA line, cuDNN, NCCL, cuBLAS, Triton, Pythons,
the torchvision/torchaudio pair) are all stated by the wheels themselves; copying them
by hand is how the seed document got them wrong. This module reads them (through
define/wheelmeta.py, a few kB per wheel) and writes the entry with the source of each
fact. What no wheel says stays hand-kept in compat.yaml, and the entry is refused
until it is there: a CUDA toolkit's minimum driver, a CUDA major's minor-version
compatibility floor, a line's GPU arch list and index URL.

The torchvision and torchaudio pair is not read from torch (torch names neither), nor
from the resolver (torchvision >= 0.29 no longer pins torch: an index happily resolves
torch 2.15 with torchvision 0.29). It follows the companion's own Requires-Dist: the
companion series whose torch requirement starts at this torch's major.minor (an exact
pin, as up to 0.21, or ``torch>=2.14.0``), newest patch first. No such series on the
index means no pair: the release cannot be built yet, and the entry is refused.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import requests
from packaging.requirements import Requirement
from packaging.version import Version

from dlbase.core import yamlio
from dlbase.core.errors import InvalidInput
from dlbase.define import wheelmeta
from dlbase.define.lock import PLATFORM as LOCK_PLATFORM

#: The environment the images install into (markers of Requires-Dist are evaluated for it).
PLATFORM = LOCK_PLATFORM
_LIBRARY_RE = {
    "cudnn": re.compile(r"^nvidia-cudnn-cu\d+\Z"),
    "nccl": re.compile(r"^nvidia-nccl-cu\d+\Z"),
}


@dataclass
class Derived:
    """The facts of one torch release's PyPI-default line, each with where it was read."""

    torch: str
    line: str
    cuda: str
    cudnn: str
    nccl: str
    triton: str
    cublas: str | None
    python: list[str]
    torchvision: str
    torchaudio: str | None
    sources: dict[str, str] = field(default_factory=dict)

    def line_entry(self) -> dict[str, str]:
        entry = {"cuda": self.cuda, "cudnn": self.cudnn, "nccl": self.nccl, "triton": self.triton}
        if self.cublas:
            entry["cublas"] = self.cublas
        return entry

    def to_dict(self) -> dict[str, Any]:
        return {"torch": self.torch, "torchvision": self.torchvision, "torchaudio": self.torchaudio,
                "python": self.python, "pypi_default": self.line, "lines": {self.line: self.line_entry()},
                "sources": self.sources}


def _env(python: str) -> dict[str, str]:
    return {"python_version": python, "python_full_version": f"{python}.0", "sys_platform": "linux",
            "platform_system": "Linux", "platform_machine": PLATFORM.split("-", 1)[0],
            "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython"}


def _exact(req: Requirement) -> str | None:
    """The version a requirement pins: ``==X`` (``==X.*`` too), ``===X`` or ``~=X``."""
    for spec in req.specifier:
        if spec.operator in ("==", "===", "~="):
            return spec.version.removesuffix(".*")
    return None


def _short(req: Requirement) -> str:
    """``name[extras]specifier`` without the environment marker (it was evaluated already)."""
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    return f"{req.name}{extras}{req.specifier}"


def _floor(req: Requirement) -> Version | None:
    """The lowest release a requirement admits (the series it was built for)."""
    lows = [Version(s.version.removesuffix(".*")) for s in req.specifier if s.operator in ("==", "===", "~=", ">=")]
    return min(lows) if lows else None


def _series(version: Version | str) -> tuple[int, int]:
    v = Version(str(version))
    return v.major, v.minor


def _pythons(meta: wheelmeta.WheelMetadata, wheels: list[str]) -> list[str]:
    from packaging.specifiers import SpecifierSet

    allowed = SpecifierSet(meta.requires_python or "")
    return [p for p in wheels if allowed.contains(f"{p}.0", prereleases=True)]


def _companion(project: str, torch: str, *, index_url: str, python: str, session: requests.Session,
               given: str | None) -> tuple[str | None, str]:
    """(the release of ``project`` that pairs with ``torch``, or None; where that was read)."""
    env = _env(python)
    if given is not None:
        meta = wheelmeta.read(index_url, project, given, python=python, platform=PLATFORM, session=session)
        req = meta.requirement("torch", env)
        if req is not None and not req.specifier.contains(torch, prereleases=True):
            raise InvalidInput(f"{project} {given} requires {req}, which excludes torch {torch}",
                               hint=f"leave --{project} out to find the {project} that pairs with torch {torch}")
        return given, f"{meta.source}: {_short(req) if req else 'no torch requirement'} (given on the command line)"
    want = _series(torch)
    seen_series: set[tuple[int, int]] = set()
    newest_note = ""
    for version in wheelmeta.versions(index_url, project, session=session):
        series = _series(version)
        if series in seen_series:
            continue  # a series that pairs with another torch is read once, at its newest patch
        try:
            meta = wheelmeta.read(index_url, project, version, python=python, platform=PLATFORM, session=session)
        except InvalidInput:
            continue  # no wheel for this Python: an older series, keep looking
        req = meta.requirement("torch", env)
        floor = _floor(req) if req is not None else None
        if floor is None:
            continue
        newest_note = newest_note or f"newest {project} {version} requires {_short(req)} (the {floor.major}.{floor.minor} series)"
        if _series(floor) == want:
            if req.specifier.contains(torch, prereleases=True):
                return version, f"{meta.source}: {_short(req)}"
            continue  # 0.24.1 pins torch 2.9.1; an older patch of the series pins 2.9.0
        seen_series.add(series)  # a series of another torch: its older patches are too
        if _series(floor) < want:
            break
    return None, f"no {project} release on {index_url} pairs with torch {torch}: {newest_note or 'none read'}"


def derive(torch: str, *, index_url: str, python: str | None = None, torchvision: str | None = None,
           torchaudio: str | None = None, session: requests.Session | None = None,
           today: _dt.date | None = None) -> Derived:
    """Read torch ``torch``'s wheel (and its companions') metadata from ``index_url``."""
    session = session or requests.Session()
    torch = str(Version(torch)) if _valid(torch) else torch
    if not _valid(torch):
        raise InvalidInput(f"'{torch}' is not a torch version", hint="write it like torch==2.14.1")
    if torch not in wheelmeta.versions(index_url, "torch", session=session):
        known = ", ".join(wheelmeta.versions(index_url, "torch", session=session)[:8])
        raise InvalidInput(f"torch {torch} is not on {index_url}", hint=f"newest releases there: {known}")
    wheel_pys = wheelmeta.wheel_pythons(index_url, "torch", torch, platform=PLATFORM, session=session)
    if not wheel_pys:
        raise InvalidInput(f"torch {torch} has no CPython wheel for {PLATFORM} on {index_url}")
    probe = python or wheel_pys[-1]
    meta = wheelmeta.read(index_url, "torch", torch, python=probe, platform=PLATFORM, session=session)
    env = _env(probe)
    sources = {"read": f"{(today or _dt.date.today()).isoformat()} from {index_url}, for Python {probe} on {PLATFORM}"}

    toolkit = meta.requirement("cuda-toolkit", env)
    cublas: str | None = None
    if toolkit is not None and _exact(toolkit):
        # CUDA 13 wheels: one cuda-toolkit metapackage; its own metadata pins cuBLAS.
        tk_version = _exact(toolkit)
        cuda = ".".join(tk_version.split(".")[:2])
        sources["cuda"] = f"{meta.source}: {_short(toolkit)}"
        tk_meta = wheelmeta.read(index_url, "cuda-toolkit", _toolkit_release(index_url, tk_version, session),
                                 python=probe, platform=PLATFORM, session=session)
        cub = tk_meta.requirement("nvidia-cublas", env, extras=("cublas",))
        cublas = _exact(cub) if cub is not None else None
        if cub is not None:
            sources["cublas"] = f"{tk_meta.source}: {_short(cub)}"
    else:
        runtime = next((r for r in meta.requirements(env) if re.fullmatch(r"nvidia-cuda-runtime-cu\d+", r.name)), None)
        if runtime is None or not _exact(runtime):
            raise InvalidInput(f"torch {torch}'s wheel names no CUDA runtime ({meta.source})",
                               hint="a CPU-only release has no CUDA line to add")
        cuda = ".".join(_exact(runtime).split(".")[:2])
        sources["cuda"] = f"{meta.source}: {_short(runtime)}"
        cub = next((r for r in meta.requirements(env) if re.fullmatch(r"nvidia-cublas-cu\d+", r.name)), None)
        cublas = _exact(cub) if cub is not None else None
        if cub is not None:
            sources["cublas"] = f"{meta.source}: {_short(cub)}"
    libs: dict[str, str] = {}
    for key, pattern in _LIBRARY_RE.items():
        req = next((r for r in meta.requirements(env) if pattern.match(r.name)), None)
        if req is None or not _exact(req):
            raise InvalidInput(f"torch {torch}'s wheel pins no {key} ({meta.source})")
        libs[key] = _exact(req)
        sources[key] = f"{meta.source}: {_short(req)}"
    triton_req = meta.requirement("triton", env)
    if triton_req is None or not _exact(triton_req):
        raise InvalidInput(f"torch {torch}'s wheel pins no triton ({meta.source})")
    sources["triton"] = f"{meta.source}: {_short(triton_req)}"
    pythons = _pythons(meta, wheel_pys)
    sources["python"] = (f"{meta.source}: Requires-Python {meta.requires_python}; cp wheels for "
                         f"{', '.join(wheel_pys)}")
    major, minor = cuda.split(".")
    vision, sources["torchvision"] = _companion("torchvision", torch, index_url=index_url, python=probe,
                                                session=session, given=torchvision)
    if vision is None:
        raise InvalidInput(f"torch {torch} has no torchvision pair on {index_url}", details=[sources["torchvision"]],
                           hint="the release cannot be built until its torchvision is published; "
                                "add the newest release that has one")
    audio, sources["torchaudio"] = _companion("torchaudio", torch, index_url=index_url, python=probe,
                                              session=session, given=torchaudio)
    return Derived(torch=torch, line=f"cu{major}{minor}", cuda=cuda, cudnn=libs["cudnn"], nccl=libs["nccl"],
                   triton=_exact(triton_req), cublas=cublas, python=pythons, torchvision=vision,
                   torchaudio=audio, sources=sources)


def _valid(text: str) -> bool:
    try:
        Version(text)
    except Exception:  # noqa: BLE001 - packaging's InvalidVersion; any failure means "not a version"
        return False
    return True


def _toolkit_release(index_url: str, pinned: str, session: requests.Session) -> str:
    """The cuda-toolkit release a ``==13.0.3`` pin names (published as 13.0.3.0)."""
    have = wheelmeta.versions(index_url, "cuda-toolkit", session=session)
    for version in have:
        if Version(version) == Version(pinned) or version.startswith(pinned + "."):
            return version
    raise InvalidInput(f"cuda-toolkit {pinned} is not on {index_url}")


# --------------------------------------------------------------------------- checking
def compare(release: Any, derived: Derived, where: str) -> list[Any]:
    """Findings (errors) where the hand-written entry ``release`` disagrees with the wheels."""
    from dlbase.define.compat import Finding

    out = []

    def differ(fact: str, written: Any, read: Any, source: str) -> None:
        if written != read:
            out.append(Finding(fact, f"{where} says {fact} {written!r}, the wheel says {read!r} ({source})",
                               f"run `dlbase compat add torch=={derived.torch}` to write what the wheels say"))

    differ("pypi_default", release.pypi_default, derived.line, derived.sources.get("cuda", ""))
    line = release.lines.get(derived.line)
    if line is not None:
        for fact in ("cuda", "cudnn", "nccl", "triton"):
            differ(fact, getattr(line, fact), getattr(derived, fact), derived.sources.get(fact, ""))
        if line.cublas is not None:
            differ("cublas", line.cublas, derived.cublas, derived.sources.get("cublas", ""))
    differ("torchvision", release.torchvision, derived.torchvision, derived.sources.get("torchvision", ""))
    differ("torchaudio", release.torchaudio, derived.torchaudio, derived.sources.get("torchaudio", ""))
    differ("python", list(release.python), derived.python, derived.sources.get("python", ""))
    return out


# --------------------------------------------------------------------------- writing
def missing_hand_kept(data: Any, derived: Derived) -> list[str]:
    """The hand-kept facts the new line needs and compat.yaml lacks (with where to find them)."""
    missing = []
    if str(derived.cuda) not in {str(k) for k in (data.get("cuda") or {})}:
        missing.append(f'cuda: "{derived.cuda}": {{min_driver: ...}}  (CUDA Toolkit release notes, driver table)')
    major = derived.cuda.split(".")[0]
    if major not in {str(k) for k in (data.get("minor_version_compat") or {})}:
        missing.append(f'minor_version_compat: "{major}": {{min_driver: ..., require_cuda: "cuda>={major}.0"}}  '
                       "(CUDA Compatibility guide)")
    if derived.line not in {str(k) for k in (data.get("arch_lists") or {})}:
        missing.append(f"arch_lists: {derived.line}: [sm_..]  (torch._C._cuda_getArchFlags() of the wheel, "
                       "or the release notes)")
    if derived.line not in {str(k) for k in (data.get("indexes") or {})}:
        missing.append(f"indexes: {derived.line}: https://download.pytorch.org/whl/{derived.line}")
    return missing


def write(path: Path, derived: Derived, *, display: str | None = None) -> list[str]:
    """Write ``derived`` into compat.yaml (round-trip: comments and order kept); return what
    changed as ``field: old -> new`` lines. Other wheel lines of an existing entry stay."""
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString as Q

    name = display or str(path)
    data = yamlio.load(path, name, round_trip=True)  # written back: keep comments
    missing = missing_hand_kept(data, derived)
    if missing:
        raise InvalidInput(f"{name} lacks hand-kept facts that no wheel states, for {derived.line}",
                           details=missing, hint="add them with their source, then run compat add again")
    releases = data["torch"]
    entry = releases.get(derived.torch)
    changes: list[str] = []
    if entry is None:
        entry = CommentedMap()
        releases[Q(derived.torch)] = entry
        changes.append(f"torch {derived.torch}: new entry")
    lines = entry.get("lines")
    if lines is None:
        lines = entry["lines"] = CommentedMap()

    def put(node: Any, key: str, value: Any, label: str) -> None:
        old = node.get(key)
        if key not in node or _plain(old) != value:
            changes.append(f"{label}: {_plain(old)!r} -> {value!r}")
            node[key] = _quoted(value)

    def _quoted(value: Any) -> Any:
        # Versions are written quoted, as in the hand-written entries: YAML reads 13.0 as a float.
        if isinstance(value, list):
            seq = CommentedSeq(Q(v) for v in value)
            seq.fa.set_flow_style()
            return seq
        return None if value is None else Q(value)

    base = f"torch {derived.torch}"
    put(entry, "torchvision", derived.torchvision, f"{base} torchvision")
    put(entry, "torchaudio", derived.torchaudio, f"{base} torchaudio")
    put(entry, "python", derived.python, f"{base} python")
    put(entry, "pypi_default", derived.line, f"{base} pypi_default")
    entry["pypi_default"] = derived.line  # a line name, written plain like its neighbours
    line = lines.get(derived.line)
    if line is None:
        line = lines[derived.line] = CommentedMap()
        line.fa.set_flow_style()
    for key, value in derived.line_entry().items():
        put(line, key, value, f"{base} {derived.line} {key}")
    entry.pop("lines")
    entry["lines"] = lines  # lines after the scalars, sources last, as in the hand-written entries
    entry.pop("sources", None)
    entry["sources"] = CommentedMap(derived.sources)
    yamlio.dump_atomic(data, path)
    return changes


def _plain(value: Any) -> Any:
    if isinstance(value, list):
        return [str(v) for v in value]
    return None if value is None else str(value)


def run(path: Path, torch: str, *, index_url: str, python: str | None = None, torchvision: str | None = None,
        torchaudio: str | None = None, dry_run: bool = False,
        say: Callable[[str], None] | None = None) -> tuple[Derived, list[str]]:
    """`dlbase compat add`: derive, then write unless ``dry_run``."""
    derived = derive(torch, index_url=index_url, python=python, torchvision=torchvision, torchaudio=torchaudio)
    if say:
        say(f"read torch {derived.torch} from {index_url}: {derived.line} (CUDA {derived.cuda})")
    if dry_run:
        return derived, []
    return derived, write(path, derived)
