"""Package URLs (purls): the names scanners give packages and images, and how two compare.

Trivy and Grype apply an OpenVEX statement when its product is the scanned image's purl
(``pkg:oci/NAME@sha256:...?repository_url=REGISTRY/REPO``) and a subcomponent is the
purl of the vulnerable package, as the SBOM spells it (``pkg:deb/debian/apt@2.6.1?arch=amd64&distro=debian-12``,
``pkg:pypi/torch@2.6.0%2Bcu124``). Parsing and writing go through packageurl-python (the
purl project's own library; the strings dlbase writes are spelled here with the spec's
percent-encoding, as the SBOM always has); this module holds the spellings dlbase writes and the one
matching rule, so the SBOM, the scan and the published VEX cannot disagree.
"""

from __future__ import annotations

from urllib.parse import quote

from packageurl import PackageURL
from packaging.utils import canonicalize_name


def parse(text: str) -> PackageURL | None:
    """The purl ``text`` spells; None when it is none (a variant name, a reference, a typo)."""
    if not isinstance(text, str) or not text.startswith("pkg:"):
        return None
    try:
        return PackageURL.from_string(text)
    except ValueError:
        return None


def pypi(name: str, version: str) -> str:
    """``pkg:pypi/NAME@VERSION``: the name normalized as the pypi type says (PEP 503), the
    version percent-encoded (``+`` -> ``%2B``)."""
    return f"pkg:pypi/{quote(canonicalize_name(name), safe='')}@{quote(version, safe='')}"


def deb(name: str, version: str, arch: str, distro: str | None = None, vendor: str = "debian") -> str:
    """``pkg:deb/VENDOR/NAME@VERSION?arch=ARCH&distro=DISTRO`` (the deb type: the namespace is
    the vendor, ``debian`` or ``ubuntu``; ``distro`` as syft and Trivy write it, ``debian-12``)."""
    qualifiers = f"?arch={quote(arch, safe='')}" + (f"&distro={quote(distro, safe='')}" if distro else "")
    return f"pkg:deb/{quote(vendor, safe='')}/{quote(name, safe='')}@{quote(version, safe='')}{qualifiers}"


def distro_qualifier(os_id: str | None, version_id: str | None) -> str | None:
    """The deb purl's ``distro`` from os-release's ID and VERSION_ID: ``debian-12``."""
    return f"{os_id.lower()}-{version_id}" if os_id and version_id else None


def oci(repository: str, digest: str) -> str:
    """The purl of an image in a registry, as the oci type defines it: the name is the last
    segment of the repository (lower case), the version the manifest digest, and
    ``repository_url`` the registry and repository without the version
    (``127.0.0.1:5000/dlbase/torch``). The digest's colon is written ``%3A``, as the oci
    type's own examples do (``pkg:oci/debian@sha256%3A244f...``); a reader decodes it, so
    ``sha256:`` written plain names the same image. ``repository`` is ``REGISTRY/REPO``
    (a tag, if any, is dropped)."""
    repo = repository.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    if ":" in last:  # REGISTRY/REPO:TAG -> REGISTRY/REPO (a port lives in the first segment only)
        repo = repo[: len(repo) - len(last)] + last.split(":", 1)[0]
    name = repo.rsplit("/", 1)[-1].lower()
    return f"pkg:oci/{quote(name, safe='')}@{quote(digest, safe='')}?repository_url={quote(repo, safe='/:')}"


def _name(purl: PackageURL) -> str:
    return canonicalize_name(purl.name) if purl.type == "pypi" else purl.name


def matches(statement: PackageURL, package: PackageURL) -> bool:
    """Whether a VEX purl speaks for a package's (or image's) purl, by the rule OpenVEX and
    the scanners use: type, namespace and name equal (the pypi type's names compared
    normalized); a version, when the VEX purl has one, equal; every qualifier the VEX purl
    has present with the same value (order never matters; a VEX purl without qualifiers
    matches every variant: ``pkg:deb/debian/apt`` matches ``apt`` of any version and arch);
    a subpath, when given, equal."""
    if statement.type.lower() != package.type.lower() or _name(statement) != _name(package):
        return False
    if (statement.namespace or "") != (package.namespace or ""):
        return False
    if statement.version and statement.version != package.version:
        return False
    theirs = package.qualifiers if isinstance(package.qualifiers, dict) else {}
    ours = statement.qualifiers if isinstance(statement.qualifiers, dict) else {}
    if any(theirs.get(key) != value for key, value in ours.items()):
        return False
    return not statement.subpath or statement.subpath == package.subpath


def matches_any(statement: str, candidates: tuple[str, ...] | list[str]) -> bool:
    """:func:`matches` of the purl text ``statement`` against each candidate purl text
    (those that do not parse match nothing)."""
    ours = parse(statement)
    if ours is None:
        return False
    return any(theirs is not None and matches(ours, theirs) for theirs in map(parse, candidates))
