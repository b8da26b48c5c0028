"""The purl rule VEX statements are matched by (OpenVEX's and the scanners'), and the
purls dlbase writes for images and packages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlbase.core import purls
from dlbase.core.errors import InvalidInput
from dlbase.trust import sbom
from dlbase.vuln import vex

DIGEST = "sha256:" + "ab" * 32
APT = "pkg:deb/debian/apt@2.6.1?arch=amd64&distro=debian-12"
DOC = Path(__file__).resolve().parents[2] / "images" / "vex" / "debian12-apt-CVE-2011-3374.json"


def test_image_purl_is_the_oci_type_with_the_digest_and_repository_url():
    assert purls.oci("127.0.0.1:5000/dlbase/PyTorch", DIGEST) == (
        f"pkg:oci/pytorch@sha256%3A{'ab' * 32}?repository_url=127.0.0.1:5000/dlbase/PyTorch")
    assert purls.oci("127.0.0.1:5000/dlbase/pytorch:2.6", DIGEST) == purls.oci("127.0.0.1:5000/dlbase/pytorch", DIGEST)
    parsed = purls.parse(purls.oci("ghcr.io/org/img", DIGEST))
    assert (parsed.type, parsed.name, parsed.version, parsed.qualifiers) == (
        "oci", "img", DIGEST, {"repository_url": "ghcr.io/org/img"})


def test_package_purls_are_the_sboms():
    assert purls.pypi("Torch_X", "2.6.0+cu124") == sbom.purl("Torch_X", "2.6.0+cu124") == "pkg:pypi/torch-x@2.6.0%2Bcu124"
    assert purls.deb("apt", "2.6.1", "amd64", "debian-12") == sbom.deb_purl("apt", "2.6.1", "amd64", "debian-12") == APT
    assert purls.distro_qualifier("Debian", "12") == "debian-12" and purls.distro_qualifier(None, "12") is None


@pytest.mark.parametrize("statement, package, expected", [
    (APT, APT, True),  # equal
    ("pkg:deb/debian/apt@2.6.1?distro=debian-12&arch=amd64", APT, True),  # qualifier order never matters
    ("pkg:deb/debian/apt", APT, True),  # no version, no qualifiers: every apt
    ("pkg:deb/debian/apt?arch=amd64", APT, True),  # a subset of the package's qualifiers
    ("pkg:deb/debian/apt@2.6.1", APT, True),
    ("pkg:deb/debian/apt@2.6.0", APT, False),  # another version
    ("pkg:deb/debian/apt?arch=arm64", APT, False),  # another qualifier value
    ("pkg:deb/debian/apt?arch=amd64&distro=debian-11", APT, False),
    ("pkg:deb/debian/apt?arch=amd64&epoch=1", APT, False),  # a qualifier the package lacks
    ("pkg:deb/ubuntu/apt", APT, False),  # another vendor (namespace)
    ("pkg:deb/debian/apt-utils", APT, False),
    ("pkg:pypi/apt", APT, False),  # another type
    ("pkg:pypi/Torch_X", "pkg:pypi/torch-x@2.6.0%2Bcu124", True),  # pypi names compare normalized
    ("pkg:pypi/torch-x@2.6.0+cu124", "pkg:pypi/torch-x@2.6.0%2Bcu124", True),  # encoding is decoded
    ("pkg:oci/pytorch@sha256%3A" + "ab" * 32 + "?repository_url=r/x/pytorch",
     "pkg:oci/pytorch@" + DIGEST + "?repository_url=r/x/pytorch", True),  # %3A is the colon
    ("pkg:oci/pytorch?repository_url=r/x/pytorch", purls.oci("r/x/pytorch", DIGEST), True),  # any digest
    ("pkg:oci/pytorch", purls.oci("r/x/pytorch", DIGEST), True),  # any registry
    ("pkg:oci/pytorch?repository_url=r/y/pytorch", purls.oci("r/x/pytorch", DIGEST), False),
    (purls.oci("r/x/pytorch", "sha256:" + "cd" * 32), purls.oci("r/x/pytorch", DIGEST), False),
])
def test_the_matching_rule(statement, package, expected):
    assert purls.matches_any(statement, [package]) is expected


def test_what_is_no_purl_matches_nothing():
    assert purls.parse("torch2.6-cu124-runtime-debian12") is None and purls.parse("pkg:") is None
    assert not purls.matches_any("pkg:", [APT]) and not purls.matches_any(APT, ["not a purl", ""])


def test_a_vex_product_may_be_a_pkg_oci_purl_and_nothing_else_of_pkg():
    d = json.loads(DOC.read_text())
    products = {"torch2.6-cu124-runtime-debian12"}
    d["statements"][0]["products"] = [{"@id": purls.oci("127.0.0.1:5000/dlbase/pytorch", DIGEST),
                                       "subcomponents": [{"@id": APT}]}]
    [statement] = vex.parse_document(d, "mem", products=products)
    assert statement.about(vex.Target(variant=None, repository=None, purls=(purls.oci("127.0.0.1:5000/dlbase/pytorch",
                                                                                       DIGEST),)))
    assert not statement.about(vex.Target(variant="torch2.6-cu124-runtime-debian12", repository=None))
    d["statements"][0]["products"] = [{"@id": "pkg:pypi/torch"}]
    with pytest.raises(InvalidInput, match="pkg:oci purl"):
        vex.parse_document(d, "mem", products=products)
    d["statements"][0]["products"] = [{"@id": "torch2.6-cu124-runtime-debian12",
                                       "subcomponents": [{"@id": "pkg:npm/left-pad"}]}]
    with pytest.raises(InvalidInput, match="subcomponents"):
        vex.parse_document(d, "mem", products=products)
