"""The compatibility table (images/compat.yaml) and the checks made against it.

The table is data; this module only loads it into typed records and answers questions
("which torchvision goes with torch 2.6.0?", "is there a CUDA 12.1 build?") with
findings that say what is wrong *and* what would work, because the point of `dlbase
check` is to stop a wrong stack (like the seed document's) before anything is built.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from dlbase.core import kinds
from dlbase.core import validate
from dlbase.core import yamlio
from dlbase.core.errors import AddressError, MatrixError

LINE_RE = re.compile(r"^cu(\d{2,})(\d)\Z")  # cu118, cu124; not cu12 (would read as CUDA 1.2)


@dataclass(frozen=True)
class WheelLine:
    """One CUDA wheel line of a torch release (cu118, cu124...) and what it pins."""

    name: str
    cuda: str
    cudnn: str
    nccl: str
    triton: str
    cublas: str | None = None  # written by `dlbase compat add` (older hand-written rows lack it)

    @property
    def cuda_major(self) -> str:
        return self.cuda.split(".")[0]

    @property
    def cudnn_major(self) -> str:
        return self.cudnn.split(".")[0]


@dataclass(frozen=True)
class Release:
    """A torch release: its exact companions, Pythons and the wheel lines it publishes."""

    torch: str
    torchvision: str
    torchaudio: str | None  # None: no torchaudio release pairs with this torch (maintenance mode since 2.9)
    python: tuple[str, ...]
    pypi_default: str
    lines: dict[str, WheelLine]
    sources: dict[str, str] = field(default_factory=dict)  # where `dlbase compat add` read each fact

    def describe_lines(self) -> str:
        parts = []
        for name, line in self.lines.items():
            extra = ", the PyPI default" if name == self.pypi_default else ""
            parts.append(f"{name} (CUDA {line.cuda}{extra})")
        return ", ".join(parts)


@dataclass(frozen=True)
class License:
    """A package's licence as compat.yaml records it (a team image is distributed: copyleft
    terms bind whoever ships it), with where that was read."""

    package: str
    spdx: str
    source: str

    @property
    def copyleft_network(self) -> bool:
        """AGPL: shipping the image (or serving with it) carries the source-offer duty."""
        return "AGPL" in self.spdx.upper()


@dataclass(frozen=True)
class MinorCompat:
    min_driver: str
    require_cuda: str


@dataclass
class Compat:
    """The whole table, loaded and validated."""

    path: str
    releases: dict[str, Release]
    cuda_min_driver: dict[str, str]
    minor_compat: dict[str, MinorCompat]
    indexes: dict[str, str]
    arch_lists: dict[str, tuple[str, ...]]
    licenses: dict[str, "License"] = field(default_factory=dict)

    # -- lookups ---------------------------------------------------------------------
    def release(self, torch: str) -> Release | None:
        return self.releases.get(torch)

    def min_driver(self, cuda: str) -> str | None:
        return self.cuda_min_driver.get(cuda)

    def minor_floor(self, cuda: str) -> MinorCompat | None:
        return self.minor_compat.get(cuda.split(".")[0])

    def index_urls(self, release: Release, line: str) -> tuple[str, list[str]]:
        """(index, extra indexes) that a resolver needs for this release and line.

        The PyPI-default line comes from PyPI alone. Any other line takes torch and the
        nvidia-* libraries from the PyTorch index and everything else from PyPI.
        """
        pypi = self.indexes["pypi"]
        if line == release.pypi_default:
            return pypi, []
        return self.indexes[line], [pypi]

    def pairs(self, cuda_major: str | None = None) -> list[dict[str, str | None]]:
        """The (torch, torchvision, torchaudio) triples in the table, for the image tests.

        ``cuda_major`` keeps the releases that publish a wheel line of that CUDA major: the
        ones that could be installed into an image of that family. An image records only
        those, so a release of another CUDA family joining the table leaves it unchanged.
        """
        return [{"torch": r.torch, "torchvision": r.torchvision, "torchaudio": r.torchaudio}
                for r in self.releases.values()
                if cuda_major is None or any(ln.cuda_major == cuda_major for ln in r.lines.values())]

    def first_with_cuda(self, cuda: str) -> tuple[Release, WheelLine] | None:
        """The oldest release with a wheel line for CUDA ``cuda`` (else for its major), and that line."""
        ordered = sorted(self.releases.values(), key=lambda r: Version(r.torch))
        for exact in (True, False):
            for rel in ordered:
                for ln in rel.lines.values():
                    if (ln.cuda == cuda) if exact else (ln.cuda_major == cuda.split(".")[0]):
                        return rel, ln
        return None

    def release_of_torchvision(self, torchvision: str) -> Release | None:
        for rel in self.releases.values():
            if rel.torchvision == torchvision:
                return rel
        return None

    def release_of_torchaudio(self, torchaudio: str) -> Release | None:
        for rel in self.releases.values():
            if rel.torchaudio == torchaudio:
                return rel
        return None


# --------------------------------------------------------------------------- loading
def _text(value: Any, file: str, field_name: str, where: str, lineno: int | None) -> str:
    """A scalar that must be written as a string: a float (YAML reads 3.10 as 3.1), a list,
    a mapping, a boolean or an empty value is an error naming the field, not a silent str()."""
    if isinstance(value, float):
        raise MatrixError(file, f"{where}: {field_name} {value!r} must be a quoted string "
                                "(YAML reads 3.10 as 3.1)", field=field_name, lineno=lineno,
                          hint=f'write it in quotes, e.g. {field_name}: "{value}"')
    if isinstance(value, bool) or value is None or not isinstance(value, (str, int)):
        raise MatrixError(file, f"{where}: {field_name} must be a string, not "
                                f"{kinds.kind_of(value)} ({value!r})",
                          field=field_name, lineno=lineno, hint="compare the entry with its neighbours in the file")
    text = str(value)
    if not text.strip():
        raise MatrixError(file, f"{where}: {field_name} is empty", field=field_name, lineno=lineno)
    return text


def _mapping(value: Any, file: str, field_name: str, lineno: int | None) -> dict:
    if not isinstance(value, dict):
        raise MatrixError(file, f"'{field_name}' must be a mapping, not "
                                f"{kinds.kind_of(value)}",
                          field=field_name, lineno=lineno, hint="compare the entry with its neighbours in the file")
    return value


def _version(value: Any, file: str, field_name: str, where: str, lineno: int | None) -> str:
    text = _text(value, file, field_name, where, lineno)
    try:
        Version(text)
    except InvalidVersion:
        raise MatrixError(file, f"'{text}' is not a valid version ({where})", field=field_name,
                          lineno=lineno) from None
    return text


def load(path: Path, display: str | None = None) -> Compat:
    """Load compat.yaml, failing with the file, entry and field on any malformed part."""
    name = display or str(path)
    data = yamlio.load(path, name)
    try:
        return _load(data, name)
    except (KeyError, TypeError, AttributeError) as exc:
        # A missing key or a wrong type in a part not validated field by field below:
        # still a message naming the file (exit 2), never a traceback.
        what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
        raise MatrixError(name, f"malformed entry: {what}",
                          hint="compare the entry with its neighbours in the file") from None


def _load(data: Any, name: str) -> Compat:
    if not isinstance(data, dict):
        raise MatrixError(name, "expected a mapping at the top level")
    for key in ("cuda", "minor_version_compat", "indexes", "arch_lists", "torch"):
        if key not in data:
            raise MatrixError(name, f"missing top-level key '{key}'", field=key)

    for key in ("cuda", "minor_version_compat", "indexes", "arch_lists", "torch"):
        _mapping(data[key], name, key, yamlio.lineno_of(data, key))

    def at(node: Any, key: Any) -> int | None:
        return yamlio.lineno_of(node, key)

    cuda_min = {}
    for cuda, entry in data["cuda"].items():
        where = f"cuda {cuda}"
        entry = _mapping(entry, name, where, at(data["cuda"], cuda))
        cuda_min[_text(cuda, name, "cuda", where, at(data["cuda"], cuda))] = _text(
            entry.get("min_driver"), name, "min_driver", where, at(data["cuda"], cuda))
    minor = {}
    for k, v in data["minor_version_compat"].items():
        where, ln = f"minor_version_compat {k}", at(data["minor_version_compat"], k)
        v = _mapping(v, name, where, ln)
        minor[str(k)] = MinorCompat(_text(v.get("min_driver"), name, "min_driver", where, ln),
                                    _text(v.get("require_cuda"), name, "require_cuda", where, ln))
    indexes = {}
    for k, v in data["indexes"].items():
        url = _text(v, name, "indexes", f"index {k}", at(data["indexes"], k))
        try:
            validate.index_url(url, what=f"index {k}")
        except AddressError as exc:
            raise MatrixError(name, exc.message, field="indexes", lineno=at(data["indexes"], k), hint=exc.hint) from None
        indexes[str(k)] = url
    if "pypi" not in indexes:
        raise MatrixError(name, "indexes has no 'pypi' entry: every line's extra index and the "
                                "PyPI-default line need it", field="indexes", lineno=yamlio.lineno_of(data, "indexes"),
                          hint="add `pypi: https://pypi.org/simple` under indexes")
    arch = {}
    for k, v in data["arch_lists"].items():
        if not isinstance(v, list):
            raise MatrixError(name, f"arch_lists {k} must be a list like [sm_80, sm_90]", field="arch_lists",
                              lineno=at(data["arch_lists"], k))
        arch[str(k)] = tuple(_text(a, name, "arch_lists", f"arch_lists {k}", at(data["arch_lists"], k)) for a in v)

    releases: dict[str, Release] = {}
    for torch, entry in data["torch"].items():
        entry = _mapping(entry, name, f"torch {torch}", at(data["torch"], torch))
        torch = _version(torch, name, "torch", "torch release key", yamlio.lineno_of(data["torch"], torch))
        where = f"torch {torch}"
        missing = [k for k in ("torchvision", "torchaudio", "python", "pypi_default", "lines") if k not in entry]
        if missing:
            raise MatrixError(name, f"{where} lacks {', '.join(missing)}", field=missing[0],
                              lineno=yamlio.lineno_of(data["torch"], torch))
        lines = {}
        if not isinstance(entry["python"], list) or not entry["python"]:
            raise MatrixError(name, f"{where}: python must be a non-empty list of quoted versions like [\"3.11\"]",
                              field="python", lineno=yamlio.lineno_of(entry, "python"))
        for line_name, spec in _mapping(entry["lines"], name, "lines", yamlio.lineno_of(entry, "lines")).items():
            line_name = str(line_name)
            lnum = yamlio.lineno_of(entry["lines"], line_name)
            if not LINE_RE.match(line_name):
                raise MatrixError(name, f"{where}: '{line_name}' is not a wheel line name like cu124",
                                  field="lines", lineno=lnum)
            if not isinstance(spec, dict) or any(k not in spec for k in ("cuda", "cudnn", "nccl", "triton")):
                lacks = [k for k in ("cuda", "cudnn", "nccl", "triton") if not isinstance(spec, dict) or k not in spec]
                raise MatrixError(name, f"{where}: line {line_name} lacks {', '.join(lacks)}", field=lacks[0],
                                  lineno=lnum)
            if line_name not in indexes:
                raise MatrixError(name, f"{where}: line {line_name} has no entry under 'indexes'",
                                  field="indexes", lineno=lnum)
            cuda = _text(spec["cuda"], name, "cuda", where, lnum)
            if cuda not in cuda_min:
                raise MatrixError(name, f"{where}: CUDA {cuda} has no minimum driver under 'cuda'",
                                  field="cuda", lineno=lnum)
            lines[line_name] = WheelLine(
                name=line_name, cuda=cuda,
                cudnn=_version(spec["cudnn"], name, "cudnn", where, lnum),
                nccl=_version(spec["nccl"], name, "nccl", where, lnum),
                triton=_version(spec["triton"], name, "triton", where, lnum),
                cublas=None if spec.get("cublas") is None else _version(spec["cublas"], name, "cublas", where, lnum),
            )
        default = _text(entry["pypi_default"], name, "pypi_default", where, yamlio.lineno_of(entry, "pypi_default"))
        if default not in lines:
            raise MatrixError(name, f"{where}: pypi_default {default} is not one of its lines",
                              field="pypi_default", lineno=yamlio.lineno_of(entry, "pypi_default"))
        releases[torch] = Release(
            torch=torch,
            torchvision=_version(entry["torchvision"], name, "torchvision", where, yamlio.lineno_of(entry, "torchvision")),
            torchaudio=None if entry["torchaudio"] is None else _version(
                entry["torchaudio"], name, "torchaudio", where, yamlio.lineno_of(entry, "torchaudio")),
            python=tuple(_text(p, name, "python", where, yamlio.lineno_of(entry, "python")) for p in entry["python"]),
            pypi_default=default,
            lines=lines,
            sources={str(k): str(v) for k, v in _mapping(entry.get("sources") or {}, name, "sources",
                                                         yamlio.lineno_of(entry, "sources")).items()},
        )
    licenses = {}
    for pkg, node in _mapping(data.get("licenses") or {}, name, "licenses", yamlio.lineno_of(data, "licenses")).items():
        where, ln = f"licenses {pkg}", yamlio.lineno_of(data["licenses"], pkg)
        node = _mapping(node, name, where, ln)
        licenses[str(pkg)] = License(str(pkg), _text(node.get("license"), name, "license", where, ln),
                                     _text(node.get("source"), name, "source", where, ln))
    return Compat(name, releases, cuda_min, minor, indexes, arch, licenses)


# ------------------------------------------------------------------------- checking
@dataclass
class Finding:
    """One problem with a stack: what is wrong, in which field, and what would work."""

    field: str
    message: str
    suggestion: str | None = None
    severity: str = "error"  # or "warning"

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "severity": self.severity, "message": self.message,
                "suggestion": self.suggestion}


@dataclass
class StackResult:
    """The outcome of checking one stack (a variant or a command-line combination)."""

    name: str
    torch: str
    torchvision: str | None = None
    torchaudio: str | None = None
    line: str | None = None
    cuda: str | None = None
    cudnn: str | None = None
    python: str | None = None
    min_driver: str | None = None
    minor_floor: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def status(self) -> str:
        if not self.ok:
            return "incompatible"
        if self.findings:
            return "ok (warnings)"
        return "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "torch": self.torch, "torchvision": self.torchvision,
            "torchaudio": self.torchaudio, "line": self.line, "cuda": self.cuda,
            "cudnn": self.cudnn, "python": self.python, "min_driver": self.min_driver,
            "minor_version_compat_driver": self.minor_floor, "status": self.status,
            "ok": self.ok, "findings": [f.to_dict() for f in self.findings],
        }


def normalise_cuda(value: str) -> str:
    """Accept '12.4', '12.4.1', 'cu124' or 'cuda12.4' and return the toolkit version '12.4'."""
    text = value.strip().lower()
    m = LINE_RE.match(text)
    if m:
        return f"{m.group(1)}.{m.group(2)}"
    text = text.removeprefix("cuda").lstrip("-")
    parts = text.split(".")
    if len(parts) >= 2 and all(p.isdigit() for p in parts):
        return f"{parts[0]}.{parts[1]}"
    raise ValueError(f"'{value}' is not a CUDA version (expected e.g. 12.4 or cu124)")


def check_stack(compat: Compat, *, torch: str, torchvision: str | None = None,
                torchaudio: str | None = None, cuda: str | None = None,
                line: str | None = None, python: str | None = None,
                name: str = "command line") -> StackResult:
    """Check one combination; every finding names the versions that do go together."""
    res = StackResult(name=name, torch=torch, torchvision=torchvision, torchaudio=torchaudio,
                      python=python)
    rel = compat.release(torch)
    if rel is None:
        known = ", ".join(compat.releases)
        res.findings.append(Finding("torch", f"torch {torch} is not in {compat.path}",
                                    f"known releases: {known}; add the release to {compat.path}"))
        return res
    audio = f"torchaudio {rel.torchaudio}" if rel.torchaudio else "no torchaudio release"
    pair = f"torch {torch} pairs with torchvision {rel.torchvision} and {audio}"
    res.torchvision = torchvision or rel.torchvision
    res.torchaudio = torchaudio or rel.torchaudio
    if torchvision is not None and torchvision != rel.torchvision:
        other = compat.release_of_torchvision(torchvision)
        why = f" (torchvision {torchvision} belongs to torch {other.torch})" if other else ""
        res.findings.append(Finding("torchvision", f"torchvision {torchvision} does not go with torch {torch}{why}",
                                    f"{pair}"))
    if torchaudio is not None and torchaudio != rel.torchaudio:
        other = compat.release_of_torchaudio(torchaudio)
        why = f" (torchaudio {torchaudio} belongs to torch {other.torch})" if other else ""
        res.findings.append(Finding("torchaudio", f"torchaudio {torchaudio} does not go with torch {torch}{why}",
                                    f"{pair}"))

    chosen: WheelLine | None = None
    if line is not None:
        chosen = rel.lines.get(line)
        if chosen is None:
            res.findings.append(Finding("line", f"torch {torch} publishes no {line} wheels",
                                        f"its lines are {rel.describe_lines()}"))
    elif cuda is not None:
        try:
            want = normalise_cuda(cuda)
        except ValueError as exc:
            res.findings.append(Finding("cuda", str(exc)))
            want = None
        if want is not None:
            chosen = next((ln for ln in rel.lines.values() if ln.cuda == want), None)
            if chosen is None:
                res.cuda = want
                same_major = [ln for ln in rel.lines.values() if ln.cuda_major == want.split(".")[0]]
                floor = compat.minor_floor(want)
                hint = f"its lines are {rel.describe_lines()}."
                if same_major and floor:
                    pick = next((ln for ln in same_major if ln.name == rel.pypi_default), same_major[0])
                    hint += (f" For a CUDA {want} host use {pick.name}: CUDA {pick.cuda_major}.x builds run on "
                             f"CUDA {pick.cuda_major}.x-era drivers from {floor.min_driver} on "
                             f"(minor-version compatibility), i.e. any {floor.min_driver.split('.')[0]}+ driver; "
                             f"the full {pick.cuda} feature set needs {compat.min_driver(pick.cuda)}+.")
                first = compat.first_with_cuda(want)
                if first is not None and not same_major:
                    rel_first, line_first = first
                    hint += (f" The first release in {compat.path} with a CUDA {line_first.cuda} build is torch "
                             f"{rel_first.torch} ({line_first.name}, torchvision {rel_first.torchvision}); "
                             f"CUDA {line_first.cuda} needs a {compat.min_driver(line_first.cuda)}+ driver.")
                elif first is None and not same_major:
                    hint += (f" No release in {compat.path} has a CUDA {want.split('.')[0]} build; "
                             "`dlbase compat add torch==X.Y.Z` adds one from its wheels.")
                res.findings.append(Finding("cuda", f"torch {torch} has no CUDA {want} build", hint))
    else:
        chosen = rel.lines[rel.pypi_default]
    if chosen is not None:
        res.line, res.cuda, res.cudnn = chosen.name, chosen.cuda, chosen.cudnn
        res.min_driver = compat.min_driver(chosen.cuda)
        floor = compat.minor_floor(chosen.cuda)
        res.minor_floor = floor.min_driver if floor else None

    if python is not None:
        if python not in rel.python:
            res.findings.append(Finding("python", f"torch {torch} publishes no wheels for Python {python}",
                                        f"supported: Python {', '.join(rel.python)}"))
    return res


def pair_findings(compat: Compat, torch: str, pins: dict[str, str], where: str) -> list[Finding]:
    """Errors for torchvision/torchaudio pins (a lock's, a variant's) that the table does not
    pair with ``torch``, whatever an index would resolve: torchvision >= 0.29 no longer pins
    torch, so torch 2.15 with torchvision 0.29 resolves, imports, and fails at the first C++
    operator."""
    rel = compat.release(torch)
    if rel is None:
        return []
    out = []
    for pkg, want in (("torch", rel.torch), ("torchvision", rel.torchvision), ("torchaudio", rel.torchaudio)):
        have = pins.get(pkg)
        if have is None or have == want:
            continue
        other = (compat.release_of_torchvision(have) if pkg == "torchvision"
                 else compat.release_of_torchaudio(have) if pkg == "torchaudio" else None)
        why = f" ({pkg} {have} pairs with torch {other.torch})" if other else ""
        expect = f"{pkg} {want}" if want else f"no {pkg} (none pairs with torch {torch})"
        out.append(Finding(pkg, f"{where} pins {pkg} {have}, which the table does not pair with torch {torch}{why}",
                           f"the table pairs torch {torch} with {expect}; re-lock (`dlbase lock --upgrade`)"))
    return out


def license_findings(compat: Compat, packages: list[str], where: str) -> list[Finding]:
    """A warning per AGPL package the variant would ship, naming the licence: distributing a
    team base image with it is a decision to make knowingly, not by a resolver."""
    out = []
    for pkg in sorted(packages):
        lic = compat.licenses.get(pkg)
        if lic is not None and lic.copyleft_network:
            out.append(Finding("license", f"{where} ships {pkg}, licensed {lic.spdx} ({lic.source})",
                               "distributing the image carries that licence's duties; choose the MIT-licensed "
                               "albumentations 2.0.8 unless the team has decided otherwise", severity="warning"))
    return out
