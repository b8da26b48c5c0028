"""The variant matrix (images/matrix.yaml): loading, strict validation, and the model.

Validation is strict on purpose: an unknown key is almost always a typo that would
otherwise silently build the wrong image. Every problem names the file, the line, the
variant and the field, and all problems are reported at once so one edit fixes them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.version import InvalidVersion, Version

from dlbase.core import kinds
from dlbase.core import digest as digests
from dlbase.core import layercompression
from dlbase.core import validate
from dlbase.core import yamlio
from dlbase.core.errors import AddressError, MatrixError

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*\Z")
PY_RE = re.compile(r"^3\.\d+\Z")
LINE_RE = re.compile(r"^cu\d{3}\Z")
APT_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+\Z")

TOP_KEYS = {"schema": False, "default": True, "repository": True, "packages": True,
            "flavors": True, "bases": True, "variants": True, "layers": False, "installer": False,
            "augmentations": False, "compression": False}
FLAVOR_KEYS = {"description": True, "packages": True, "apt": True, "compiler": True, "jupyter": True,
               "extends": False}
INSTALLER_KEYS = {"tool": True, "version": False}
INSTALLERS = ("uv", "pip")
VERSION_RE = re.compile(r"^[0-9]+(\.[0-9]+)*\Z")
LAYER_KEYS = {"name": True, "match": False, "closure": False, "flavor": False}
BASE_KEYS = {"image": True, "tag": True, "source": True, "os": True, "python": True,
             "cuda_toolkit": True, "digest": False, "suite": False}
VARIANT_KEYS = {"name": True, "torch": True, "line": True, "flavor": True, "python": True,
                "base": True, "packages": False, "augmentation": False}
AUGMENTATION_KEYS = {"version": True, "env": False}
COMPRESSION_KEYS = {"default": True, "lines": False}
BASE_SOURCES = ("registry", "bootstrap")


@dataclass(frozen=True)
class Flavor:
    name: str
    description: str
    packages: dict[str, str]
    apt: tuple[str, ...]
    compiler: bool
    jupyter: bool
    extends: str | None = None  # the flavor whose lock constrains this one's (shared layers)


@dataclass(frozen=True)
class LayerGroup:
    """One image layer: the locked packages a rule selects, minus those an earlier group took.

    ``match``: name globs (``nvidia-*``); ``closure``: root packages whose whole dependency
    closure (from the resolver's ``# via`` record) belongs here; ``flavor``: the flavor's own
    packages and their closure. Rules, not lists, so a new dependency finds its layer.
    """

    name: str
    match: tuple[str, ...] = ()
    closure: tuple[str, ...] = ()
    flavor: bool = False


@dataclass(frozen=True)
class Base:
    key: str
    image: str
    tag: str
    source: str
    os: str
    python: str
    cuda_toolkit: str | None
    digest: str | None
    suite: str | None = None  # the Debian suite a bootstrap base is made from (None: bookworm)

    @property
    def ref(self) -> str:
        """The reference a Dockerfile's FROM uses: by digest when pinned."""
        ref = f"{self.image}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref

    @property
    def tag_ref(self) -> str:
        return f"{self.image}:{self.tag}"

    @property
    def pinned(self) -> bool:
        return self.digest is not None or self.source == "bootstrap"


@dataclass(frozen=True)
class Variant:
    name: str
    torch: str
    line: str
    flavor: Flavor
    python: str
    base: Base
    packages: dict[str, str]  # shared pins merged with flavor and variant overrides
    line_no: int | None = None
    augmentation: str | None = None  # the augmentation library chosen (a key of `augmentations:`)
    augmentation_env: dict[str, str] = field(default_factory=dict)  # its run-time settings (telemetry off)
    compression: str = layercompression.GZIP  # the layers' compression its line publishes (`compression:`)


@dataclass(frozen=True)
class Augmentation:
    """One augmentation library a variant may choose; the choices provide the same module
    (`albumentations`), so a variant ships exactly one, and its ``env`` switches off what
    the library does at run time that an image must not (telemetry)."""
    name: str
    version: str
    env: dict[str, str]


@dataclass(frozen=True)
class Compression:
    """The layer compression each wheel line's images are built and published with
    (``compression:`` in the matrix): ``default`` for a line not named under ``lines``.

    Per line because who pulls an image follows its line: a line for old hosts (old
    drivers, old Docker) stays gzip, which every client reads; a line for new hosts takes
    zstd, which Docker >= 23, containerd >= 1.5, CRI-O and podman read and which is
    several times faster to write and to unpack (docs/operators-compression.md).
    Absent: gzip everywhere, what every image was before the choice existed."""

    default: str = layercompression.GZIP
    lines: dict[str, str] = field(default_factory=dict)

    def of(self, line: str) -> str:
        return self.lines.get(line, self.default)


@dataclass(frozen=True)
class Installer:
    """What each layer's RUN installs the wheels with (images/_build/install_group.py).

    ``uv`` unpacks wheels about 2.5x faster than pip and is fetched per RUN from the
    hash-pinned images/_build/installer.lock (so it never stays in the image); ``pip``
    (the venv's own) needs nothing fetched. ``version`` pins uv; pip's is the venv's.
    """

    tool: str = "pip"
    version: str | None = None

    @property
    def requirement(self) -> str | None:
        """The one requirement the installer lock resolves (None: nothing to fetch)."""
        return f"{self.tool}=={self.version}" if self.tool == "uv" and self.version else None


@dataclass
class Matrix:
    path: str
    default: str
    repository: str
    packages: dict[str, str]
    flavors: dict[str, Flavor]
    bases: dict[str, Base]
    variants: list[Variant] = field(default_factory=list)
    layers: tuple[LayerGroup, ...] = ()
    installer: Installer = field(default_factory=Installer)
    augmentations: dict[str, Augmentation] = field(default_factory=dict)  # the libraries a variant may choose
    compression: Compression = field(default_factory=Compression)  # the layers' format per line

    def get(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        known = ", ".join(v.name for v in self.variants)
        raise MatrixError(self.path, f"no variant named '{name}'", variant=name,
                          hint=f"known variants: {known}")

    def select(self, names: list[str] | None) -> list[Variant]:
        if not names:
            return list(self.variants)
        return [self.get(n) for n in names]

    @property
    def default_variant(self) -> Variant:
        return self.get(self.default)


class _Problems:
    """Collects every problem in a file so the user sees them all in one run."""

    def __init__(self, file: str):
        self.file = file
        self.items: list[MatrixError] = []

    def add(self, message: str, *, variant: str | None = None, field_name: str | None = None,
            lineno: int | None = None) -> None:
        self.items.append(MatrixError(self.file, message, variant=variant, field=field_name, lineno=lineno))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        first = self.items[0]
        if len(self.items) > 1:
            first.details = [e.message for e in self.items[1:]]
            first.message += f" (and {len(self.items) - 1} more problem(s))"
        first.hint = first.hint or "fix the matrix file; `dlbase check` re-validates it"
        raise first


def _check_keys(probs: _Problems, node: Any, allowed: dict[str, bool], *, what: str,
                variant: str | None = None) -> bool:
    if not isinstance(node, dict):
        probs.add(f"{what} must be a mapping", variant=variant, lineno=yamlio.lineno_of(node))
        return False
    for key in node:
        if key not in allowed:
            probs.add(f"unknown key '{key}' in {what} (allowed: {', '.join(sorted(allowed))})",
                      variant=variant, field_name=str(key), lineno=yamlio.lineno_of(node, key))
    for key, required in allowed.items():
        if required and key not in node:
            probs.add(f"missing required field '{key}' in {what}", variant=variant,
                      field_name=key, lineno=yamlio.lineno_of(node))
    return True


def _check_version(probs: _Problems, node: Any, key: str, *, variant: str | None = None) -> str | None:
    if key not in node:
        return None
    value = node[key]
    text = "" if value is None else str(value)
    if isinstance(value, float):
        probs.add(f"{key} {value!r} must be a quoted string (YAML reads 2.10 as 2.1)", variant=variant,
                  field_name=key, lineno=yamlio.lineno_of(node, key))
        return None
    try:
        Version(text)
        if not re.match(r"^\d+(\.\d+)*\Z", text):
            raise InvalidVersion(text)
    except InvalidVersion:
        probs.add(f"'{text}' is not a valid version string", variant=variant, field_name=key,
                  lineno=yamlio.lineno_of(node, key))
        return None
    return text


def _pins(probs: _Problems, node: Any, what: str, variant: str | None = None) -> dict[str, str]:
    if node is None:
        return {}
    if not isinstance(node, dict):
        probs.add(f"{what} must map package names to versions", variant=variant)
        return {}
    out = {}
    for pkg in node:
        ver = _check_version(probs, node, pkg, variant=variant)
        if ver:
            out[str(pkg)] = ver
    return out


def _check_name_agrees(probs: _Problems, vname: str, *, lineno: int | None, lname: str, torch: str | None,
                       flavor: str, flavors: dict[str, Flavor]) -> None:
    """A variant's name is read by people as its content (torch2.6-cu124-runtime-...): a name
    that says cu118 while the variant builds cu124 would publish a lying tag."""
    tokens = vname.split("-")
    for tok in tokens:
        m = re.fullmatch(r"cu\d{3}", tok)
        if m and LINE_RE.match(lname) and tok != lname:
            probs.add(f"the name says {tok} but the variant's line is {lname}", variant=vname,
                      field_name="line", lineno=lineno)
        m = re.fullmatch(r"torch(\d+(?:\.\d+)*)", tok)
        if m and torch and not (torch == m.group(1) or torch.startswith(m.group(1) + ".")):
            probs.add(f"the name says torch {m.group(1)} but the variant's torch is {torch}", variant=vname,
                      field_name="torch", lineno=lineno)
        if tok in flavors and flavor in flavors and tok != flavor:
            probs.add(f"the name says flavor {tok} but the variant's flavor is {flavor}", variant=vname,
                      field_name="flavor", lineno=lineno)


def load(path: Path, display: str | None = None) -> Matrix:
    """Load and validate the matrix. Raises MatrixError (exit 2) listing every problem."""
    name = display or str(path)
    data = yamlio.load(path, name)
    probs = _Problems(name)
    if not isinstance(data, dict):
        probs.add("expected a mapping at the top level")
        probs.raise_if_any()
    _check_keys(probs, data, TOP_KEYS, what="the matrix")
    probs.raise_if_any()

    packages = _pins(probs, data["packages"], "packages")
    augmentations = _augmentations(probs, data.get("augmentations"))
    repository = data["repository"]
    if not isinstance(repository, str):
        probs.add(f"repository must be a string like dlbase/pytorch, not {kinds.kind_of(repository)}",
                  field_name="repository", lineno=yamlio.lineno_of(data, "repository"))
    else:
        try:
            validate.repository(repository, where="repository")
        except AddressError as exc:
            probs.add(exc.message.removeprefix("repository: ") + "; it must follow Docker's reference grammar "
                      "(lower-case, e.g. dlbase/pytorch)", field_name="repository",
                      lineno=yamlio.lineno_of(data, "repository"))
    for section in ("flavors", "bases"):
        if data[section] is not None and not isinstance(data[section], dict):
            probs.add(f"{section} must be a mapping of names to entries", field_name=section,
                      lineno=yamlio.lineno_of(data, section))
    probs.raise_if_any()

    flavors: dict[str, Flavor] = {}
    for fname, fnode in (data["flavors"] or {}).items():
        if not _check_keys(probs, fnode, FLAVOR_KEYS, what=f"flavor '{fname}'"):
            continue
        if any(k not in fnode for k, req in FLAVOR_KEYS.items() if req):
            continue
        apt = fnode["apt"] or []
        if not isinstance(apt, list) or not all(isinstance(a, str) and APT_RE.match(a) for a in apt):
            probs.add(f"flavor '{fname}': apt must be a list of Debian package names", field_name="apt",
                      lineno=yamlio.lineno_of(fnode, "apt"))
            apt = []
        for flag in ("compiler", "jupyter"):
            if not isinstance(fnode[flag], bool):
                probs.add(f"flavor '{fname}': {flag} must be true or false, not {fnode[flag]!r}",
                          field_name=flag, lineno=yamlio.lineno_of(fnode, flag))
        flavors[str(fname)] = Flavor(
            name=str(fname), description=str(fnode["description"]),
            packages=_pins(probs, fnode["packages"], f"flavor '{fname}' packages"),
            apt=tuple(str(a) for a in apt),
            compiler=bool(fnode["compiler"]), jupyter=bool(fnode["jupyter"]),
            extends=None if fnode.get("extends") is None else str(fnode["extends"]),
        )
    for fname, flavor in flavors.items():
        if flavor.extends is not None and flavor.extends not in flavors:
            probs.add(f"flavor '{fname}' extends '{flavor.extends}', which is not a flavor",
                      field_name="extends", lineno=yamlio.lineno_of(data["flavors"][fname], "extends"))
        elif flavor.extends is not None and flavors[flavor.extends].extends is not None:
            probs.add(f"flavor '{fname}' extends '{flavor.extends}', which extends another flavor "
                      "(one level only: the runtime lock is the shared base)",
                      field_name="extends", lineno=yamlio.lineno_of(data["flavors"][fname], "extends"))

    layers = _layers(probs, data.get("layers"))
    installer = _installer(probs, data, data.get("installer"))
    layer_compression = _compression(probs, data, data.get("compression"))

    bases: dict[str, Base] = {}
    for bname, bnode in (data["bases"] or {}).items():
        if not _check_keys(probs, bnode, BASE_KEYS, what=f"base '{bname}'"):
            continue
        if any(k not in bnode for k, req in BASE_KEYS.items() if req):
            continue
        source = str(bnode["source"])
        if source not in BASE_SOURCES:
            probs.add(f"base '{bname}': source must be one of {', '.join(BASE_SOURCES)}",
                      field_name="source", lineno=yamlio.lineno_of(bnode, "source"))
        digest = bnode.get("digest")
        if digest is not None and not digests.is_sha256(str(digest)):
            probs.add(f"base '{bname}': digest '{digest}' is not sha256:<64 hex>; let `dlbase pin` write it",
                      field_name="digest", lineno=yamlio.lineno_of(bnode, "digest"))
        python = str(bnode["python"])
        if not PY_RE.match(python):
            probs.add(f"base '{bname}': python '{python}' must look like 3.11", field_name="python",
                      lineno=yamlio.lineno_of(bnode, "python"))
        os_name = bnode["os"]
        if not isinstance(os_name, str) or not NAME_RE.match(os_name):
            probs.add(f"base '{bname}': os {os_name!r} must be a short lower-case name like debian12 "
                      "(it becomes part of every tag)", field_name="os", lineno=yamlio.lineno_of(bnode, "os"))
        for fld, check in (("image", validate.repository), ("tag", validate.tag)):
            try:
                check(str(bnode[fld]), where=f"base '{bname}' {fld}")
            except AddressError as exc:
                probs.add(exc.message, field_name=fld, lineno=yamlio.lineno_of(bnode, fld))
        toolkit = bnode["cuda_toolkit"]
        suite = bnode.get("suite")
        if suite is not None and (source != "bootstrap" or not isinstance(suite, str) or not NAME_RE.match(suite)):
            probs.add(f"base '{bname}': suite {suite!r} must be a Debian suite name like trixie, and only a "
                      "bootstrap base has one", field_name="suite", lineno=yamlio.lineno_of(bnode, "suite"))
            suite = None
        bases[str(bname)] = Base(
            key=str(bname), image=str(bnode["image"]), tag=str(bnode["tag"]), source=source,
            os=str(bnode["os"]), python=python,
            cuda_toolkit=None if toolkit is None else str(toolkit),
            digest=None if digest is None else str(digest), suite=suite,
        )

    variants: list[Variant] = []
    seen: dict[str, int | None] = {}
    vnodes = data["variants"]
    if not isinstance(vnodes, list) or not vnodes:
        probs.add("variants must be a non-empty list", field_name="variants",
                  lineno=yamlio.lineno_of(data, "variants"))
        vnodes = []
    for idx, vnode in enumerate(vnodes):
        vname = str(vnode.get("name")) if isinstance(vnode, dict) and vnode.get("name") else f"#{idx + 1}"
        lineno = yamlio.lineno_of(vnode) if isinstance(vnode, dict) else None
        if not _check_keys(probs, vnode, VARIANT_KEYS, what="the variant", variant=vname):
            continue
        if not NAME_RE.match(vname) and not vname.startswith("#"):
            probs.add(f"name '{vname}' may hold only lower-case letters, digits, '.', '_' and '-' "
                      "(it becomes a folder and a tag)", variant=vname, field_name="name", lineno=lineno)
        if vname in seen:
            probs.add(f"duplicate variant name (first defined at line {seen[vname]})", variant=vname,
                      field_name="name", lineno=lineno)
            continue
        seen[vname] = lineno
        torch = _check_version(probs, vnode, "torch", variant=vname)
        lname = str(vnode.get("line", ""))
        if "line" in vnode and not LINE_RE.match(lname):
            probs.add(f"line '{lname}' is not a wheel line name like cu124", variant=vname,
                      field_name="line", lineno=yamlio.lineno_of(vnode, "line"))
        python = str(vnode.get("python", ""))
        if "python" in vnode and (isinstance(vnode["python"], float) or not PY_RE.match(python)):
            probs.add(f"python '{vnode['python']}' must be a quoted string like \"3.11\"", variant=vname,
                      field_name="python", lineno=yamlio.lineno_of(vnode, "python"))
        fname = str(vnode.get("flavor", ""))
        if "flavor" in vnode and fname not in flavors:
            probs.add(f"flavor '{fname}' does not exist (defined flavors: {', '.join(flavors)})",
                      variant=vname, field_name="flavor", lineno=yamlio.lineno_of(vnode, "flavor"))
        bname = str(vnode.get("base", ""))
        if "base" in vnode and bname not in bases:
            probs.add(f"base '{bname}' is not defined under 'bases' (defined: {', '.join(bases)})",
                      variant=vname, field_name="base", lineno=yamlio.lineno_of(vnode, "base"))
        overrides = _pins(probs, vnode.get("packages"), "packages", variant=vname)
        chosen = _chosen_augmentation(probs, vnode, vname, augmentations)
        _check_name_agrees(probs, vname, lineno=lineno, lname=lname, torch=torch, flavor=fname, flavors=flavors)
        if torch and fname in flavors and bname in bases and LINE_RE.match(lname) and PY_RE.match(python):
            flavor = flavors[fname]
            variants.append(Variant(
                name=vname, torch=torch, line=lname, flavor=flavor, python=python, base=bases[bname],
                packages={**({chosen.name: chosen.version} if chosen else {}), **packages, **flavor.packages,
                          **overrides}, line_no=lineno,
                augmentation=chosen.name if chosen else None, augmentation_env=dict(chosen.env) if chosen else {},
                compression=layer_compression.of(lname),
            ))

    default = str(data["default"])
    if vnodes and default not in seen:
        probs.add(f"default '{default}' is not a variant in this file", field_name="default",
                  lineno=yamlio.lineno_of(data, "default"))
    probs.raise_if_any()
    return Matrix(path=name, default=default, repository=str(data["repository"]), packages=packages,
                  flavors=flavors, bases=bases, variants=variants, layers=layers, installer=installer,
                  augmentations=augmentations, compression=layer_compression)


def _augmentations(probs: _Problems, node: Any) -> dict[str, Augmentation]:
    """``augmentations:``: NAME -> {version, env}; the first is what a variant without an
    ``augmentation:`` key ships. Absent: none (the pins under ``packages:`` are all)."""
    if node is None:
        return {}
    if not isinstance(node, dict) or not node:
        probs.add("augmentations must map library names to {version: ..., env: {...}}", field_name="augmentations")
        return {}
    out: dict[str, Augmentation] = {}
    for name, spec in node.items():
        where = f"augmentations.{name}"
        if not isinstance(spec, dict):
            probs.add(f"{where} must be a mapping with a version (and optionally env)", field_name="augmentations",
                      lineno=yamlio.lineno_of(node, name))
            continue
        _check_keys(probs, spec, AUGMENTATION_KEYS, what=where)
        version = _check_version(probs, spec, "version") if "version" in spec else None
        env = spec.get("env") or {}
        if not isinstance(env, dict) or not all(isinstance(k, str) and re.fullmatch(r"[A-Z_][A-Z0-9_]*", k)
                                                and isinstance(v, str) for k, v in env.items()):
            probs.add(f"{where}.env must map NAME to a quoted string (\"1\")", field_name="augmentations",
                      lineno=yamlio.lineno_of(node, name))
            env = {}
        if version:
            out[str(name)] = Augmentation(name=str(name), version=version, env={str(k): str(v) for k, v in env.items()})
    return out


def _chosen_augmentation(probs: _Problems, vnode: dict, vname: str,
                         augmentations: dict[str, Augmentation]) -> Augmentation | None:
    """The variant's ``augmentation:`` (default: the first of ``augmentations:``)."""
    if "augmentation" not in vnode:
        return next(iter(augmentations.values()), None)
    name = str(vnode["augmentation"])
    if name not in augmentations:
        probs.add(f"augmentation '{name}' is not under 'augmentations' (defined: {', '.join(augmentations) or 'none'})",
                  variant=vname, field_name="augmentation", lineno=yamlio.lineno_of(vnode, "augmentation"))
        return None
    return augmentations[name]


def _compression(probs: _Problems, data: Any, node: Any) -> Compression:
    """``compression:``: {default: NAME, lines: {LINE: NAME}}. Absent: gzip for every line.
    A name that is not gzip or zstd is a problem here, so nothing is built with it."""
    if node is None:
        return Compression()
    if not _check_keys(probs, node, COMPRESSION_KEYS, what="compression"):
        return Compression()
    choices = ", ".join(layercompression.CHOICES)

    def name(value: Any, where: str, lineno: int | None) -> str | None:
        if value in layercompression.CHOICES:
            return str(value)
        probs.add(f"{where}: unknown layer compression {value!r} (choose one of {choices})",
                  field_name="compression", lineno=lineno)
        return None

    default = name(node.get("default"), "compression.default", yamlio.lineno_of(node, "default"))
    lines_node = node.get("lines") or {}
    if not isinstance(lines_node, dict):
        probs.add("compression.lines must map wheel lines (cu124) to gzip or zstd", field_name="compression",
                  lineno=yamlio.lineno_of(node, "lines"))
        lines_node = {}
    lines: dict[str, str] = {}
    for line, value in lines_node.items():
        where = f"compression.lines.{line}"
        if not LINE_RE.match(str(line)):
            probs.add(f"{where}: '{line}' is not a wheel line name like cu124", field_name="compression",
                      lineno=yamlio.lineno_of(lines_node, line))
            continue
        chosen = name(value, where, yamlio.lineno_of(lines_node, line))
        if chosen:
            lines[str(line)] = chosen
    return Compression(default=default or layercompression.GZIP, lines=lines)


def _installer(probs: _Problems, data: Any, node: Any) -> Installer:
    """The wheel installer of every layer RUN. Absent: pip (the venv's own, nothing fetched)."""
    if node is None:
        return Installer()
    if not _check_keys(probs, node, INSTALLER_KEYS, what="installer"):
        return Installer()
    tool, version = node.get("tool"), node.get("version")
    lineno = yamlio.lineno_of(data, "installer")
    if tool not in INSTALLERS:
        probs.add(f"installer tool must be one of {', '.join(INSTALLERS)}, not {tool!r}",
                  field_name="tool", lineno=lineno)
        return Installer()
    if tool == "uv" and not (isinstance(version, str) and VERSION_RE.match(version)):
        probs.add(f"installer uv needs an exact version such as \"0.13.9\" (quoted), not {version!r}",
                  field_name="version", lineno=lineno)
        return Installer()
    if tool == "pip" and version is not None:
        probs.add("installer pip takes no version: it is the venv's own pip", field_name="version", lineno=lineno)
        return Installer()
    return Installer(tool=tool, version=version if tool == "uv" else None)


def _layers(probs: _Problems, node: Any) -> tuple[LayerGroup, ...]:
    """The layer groups, lowest first. Absent: one group holding the whole lock."""
    if node is None:
        return ()
    if not isinstance(node, list) or not node:
        probs.add("layers must be a non-empty list of groups", field_name="layers")
        return ()
    groups: list[LayerGroup] = []
    seen: set[str] = set()
    for gnode in node:
        if not _check_keys(probs, gnode, LAYER_KEYS, what="a layer group"):
            continue
        gname = str(gnode.get("name", ""))
        gline = yamlio.lineno_of(gnode)
        if not NAME_RE.match(gname):
            probs.add(f"layer group name '{gname}' may hold only lower-case letters, digits, '.', '_' and '-'",
                      field_name="name", lineno=gline)
            continue
        if gname in seen:
            probs.add(f"layer group '{gname}' is defined twice", field_name="name", lineno=gline)
            continue
        seen.add(gname)
        lists = {}
        for key in ("match", "closure"):
            value = gnode.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                probs.add(f"layer group '{gname}': {key} must be a list of package names or globs",
                          field_name=key, lineno=yamlio.lineno_of(gnode, key))
                value = []
            lists[key] = tuple(value)
        flavor = bool(gnode.get("flavor", False))
        if not (lists["match"] or lists["closure"] or flavor):
            probs.add(f"layer group '{gname}' has no rule (give match:, closure: or flavor: true)",
                      field_name="name", lineno=gline)
        groups.append(LayerGroup(name=gname, match=lists["match"], closure=lists["closure"], flavor=flavor))
    return tuple(groups)
