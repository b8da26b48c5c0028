"""What an image installs, in the terms advisories use: an OSV ecosystem per package.

Python distributions are PyPI packages under their dist-info names. Debian and Ubuntu
advisories are keyed by *source* package (``glibc``, not ``libc6``) and its version, so
each dpkg entry keeps its ``Source:`` field (with the source version when dpkg records
one that differs, e.g. a binNMU). The OS release decides the ecosystem (``Debian:12``).
Each package also carries the purls the SBOM gives its parts (every binary's
``pkg:deb/debian/NAME@VERSION?arch=..&distro=..``, the distribution's ``pkg:pypi/NAME@VERSION``),
which is what a VEX subcomponent written by purl is matched against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from dlbase.core import purls
from dlbase.define.lock import Lock


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    arch: str
    source: str
    source_version: str


@dataclass(frozen=True)
class Package:
    """One installed package as matched: ``name`` is what advisories key it by (the
    source package for dpkg), ``installed`` what the user sees (binary names)."""

    ecosystem: str
    name: str
    version: str
    installed: tuple[str, ...]
    purl: str
    purls: tuple[str, ...] = ()  # the SBOM's purls of what is installed, and the source's



@dataclass
class Inventory:
    os_ecosystem: str | None
    os_pretty: str | None
    python: dict[str, str] = field(default_factory=dict)  # dist-info Name -> Version
    deb: list[DebPackage] = field(default_factory=list)
    distro: str | None = None  # the deb purl's distro qualifier: debian-12
    vendor: str | None = None  # the deb purl's namespace: debian, ubuntu

    def debian_packages(self) -> list[tuple[str, str, str]]:
        """(name, version, arch) of each dpkg package that has all three (what the SBOM and
        the provenance list; an entry without them names nothing installable)."""
        return [(d.name, d.version, d.arch) for d in self.deb if d.name and d.version and d.arch]

    def packages(self) -> list[Package]:
        """Every package to match, PyPI first; dpkg binaries folded into their source."""
        out = [Package("PyPI", name, version, (name,), f"pkg:pypi/{canonicalize_name(name)}",
                       (purls.pypi(name, version),))
               for name, version in sorted(self.python.items(), key=lambda kv: kv[0].lower())]
        if self.os_ecosystem:
            vendor = self.vendor or self.os_ecosystem.split(":")[0].lower()
            by_source: dict[tuple[str, str], list[DebPackage]] = {}
            for deb in self.deb:
                by_source.setdefault((deb.source, deb.source_version), []).append(deb)
            for (source, version), binaries in sorted(by_source.items()):
                named = tuple(purls.deb(b.name, b.version, b.arch, self.distro, vendor) for b in binaries
                              if b.name and b.version and b.arch)
                source_purl = f"pkg:deb/{vendor}/{source}?arch=source"
                out.append(Package(self.os_ecosystem, source, version, tuple(sorted(b.name for b in binaries)),
                                   source_purl, named + (purls.deb(source, version, "source", self.distro, vendor),)))
        return out


def parse_dpkg_status(text: str) -> list[DebPackage]:
    """Installed packages of a dpkg status file, with their source package and version.

    ``Source: glibc`` names the source; ``Source: gcc-12 (12.2.0-14)`` also its version
    (when it differs from the binary's); no ``Source`` means the source is the binary."""
    found: list[DebPackage] = []
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace() and ":" in line:
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
        if not fields.get("Package") or fields.get("Status", "").split()[-1:] != ["installed"]:
            continue
        version = fields.get("Version", "")
        source, source_version = fields["Package"], version
        match = re.match(r"^(\S+)(?:\s+\((\S+)\))?$", fields.get("Source", ""))
        if match:
            source = match.group(1)
            source_version = match.group(2) or version
        found.append(DebPackage(fields["Package"], version, fields.get("Architecture", ""), source, source_version))
    return found


def _os_release_values(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def purl_distro(text: str) -> tuple[str | None, str | None]:
    """(deb purl namespace, distro qualifier) from /etc/os-release: ``("debian", "debian-12")``."""
    values = _os_release_values(text)
    vendor = values.get("ID", "").lower() or None
    return vendor, purls.distro_qualifier(vendor, values.get("VERSION_ID") or None)


def parse_os_release(text: str) -> tuple[str | None, str | None]:
    """(OSV ecosystem, pretty name) from /etc/os-release: ``Debian:12``, ``Ubuntu:22.04``.
    Other distributions get None: their packages are not matched (and the report says so)."""
    values = _os_release_values(text)
    distro, release = values.get("ID", "").lower(), values.get("VERSION_ID", "")
    pretty = values.get("PRETTY_NAME")
    if distro == "debian" and release:
        return f"Debian:{release.split('.')[0]}", pretty
    if distro == "ubuntu" and release:
        return f"Ubuntu:{release}", pretty
    return None, pretty


@dataclass(frozen=True)
class LockDisagreement:
    name: str
    locked: str | None
    installed: str | None

    def to_dict(self) -> dict:
        return {"name": self.name, "locked": self.locked, "installed": self.installed}


def against_lock(python: dict[str, str], lock: Lock) -> tuple[list[LockDisagreement], list[str]]:
    """(disagreements, extras): a locked package missing or at another version is a
    disagreement (the image is not what the lock says); a distribution the lock does not
    pin (pip, from the venv itself) is an extra, listed but no disagreement."""
    installed = {canonicalize_name(n): (n, v) for n, v in python.items()}
    bad: list[LockDisagreement] = []
    for pin in lock.packages:
        have = installed.get(pin.key)
        if have is None:
            bad.append(LockDisagreement(pin.name, pin.version, None))
        elif not _same_version(have[1], pin.version):
            bad.append(LockDisagreement(pin.name, pin.version, have[1]))
    pinned = {p.key for p in lock.packages}
    extras = sorted(name for key, (name, _v) in installed.items() if key not in pinned)
    return bad, extras


def _same_version(a: str, b: str) -> bool:
    """PEP 440 equality (``2.6.0+CU124`` is ``2.6.0+cu124``); exact text when unparsable."""
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b
