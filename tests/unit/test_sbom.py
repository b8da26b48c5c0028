"""CycloneDX SBOM: structure, purls, lock hashes."""

from __future__ import annotations

import json
import time

from dlbase.trust import sbom

from tests.support.small_project import make_wheel, sha256


def _lock(tmp_path):
    wheel = make_wheel(tmp_path / "w")
    text = (f"dlbase-tiny==1.0 \\\n    --hash=sha256:{sha256(wheel)}\n"
            f"Pillow==11.0.0 \\\n    --hash=sha256:{'a' * 64} \\\n    --hash=sha256:{'b' * 64}\n")
    path = tmp_path / "requirements.lock"
    path.write_text(text)
    return path, sha256(wheel)


def test_document_shape_and_components(tmp_path):
    lock, wheel_hash = _lock(tmp_path)
    doc = sbom.cyclonedx(image_id="sha256:" + "1" * 64, image_name="repo:tag", lock_path=lock,
                         packages={"dlbase_tiny": "1.0", "pillow": "11.0.0", "pip": "24.0", "torch": "2.6.0+cu124"},
                         timestamp="2025-01-01T00:00:00Z")
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.5" and doc["version"] == 1
    assert doc["serialNumber"].startswith("urn:uuid:")
    assert doc["metadata"]["component"]["type"] == "container"
    by = {c["name"]: c for c in doc["components"]}
    assert by["dlbase_tiny"]["purl"] == "pkg:pypi/dlbase-tiny@1.0"
    assert by["dlbase_tiny"]["hashes"] == [{"alg": "SHA-256", "content": wheel_hash}]
    assert [h["content"] for h in by["pillow"]["hashes"]] == ["a" * 64, "b" * 64]
    assert "hashes" not in by["pip"]  # not pinned by the lock: no invented hash
    assert by["torch"]["purl"] == "pkg:pypi/torch@2.6.0%2Bcu124"
    assert all(c["bom-ref"] == c["purl"] and c["type"] == "library" for c in doc["components"])
    assert json.loads(json.dumps(doc)) == doc  # plain JSON, nothing that serialises lossily


def test_deterministic_and_version_mismatch_gets_no_hash(tmp_path):
    lock, _ = _lock(tmp_path)
    kw = dict(image_id="sha256:" + "2" * 64, image_name="x", lock_path=lock, packages={"dlbase-tiny": "2.0"},
              timestamp="t")
    assert sbom.cyclonedx(**kw) == sbom.cyclonedx(**kw)
    comp = sbom.cyclonedx(**kw)["components"][0]
    assert "hashes" not in comp and comp["properties"][0]["value"] == "1.0"


def test_two_documents_of_one_image_compare_equal_whenever_written(tmp_path):
    """No wall clock in the document: written a second apart, still equal."""
    lock, _ = _lock(tmp_path)
    kw = dict(image_id="sha256:" + "4" * 64, image_name="x", lock_path=lock, packages={"dlbase-tiny": "1.0"})
    first = sbom.cyclonedx(**kw)
    time.sleep(1.05)
    assert sbom.cyclonedx(**kw) == first
    assert sbom.cyclonedx(**kw, timestamp="2025-01-01T00:00:00Z")["metadata"]["timestamp"] == "2025-01-01T00:00:00Z"


def test_without_lock_no_component_has_hashes(tmp_path):
    doc = sbom.cyclonedx(image_id="sha256:" + "3" * 64, image_name="x", packages={"a": "1", "B_c": "2"},
                         lock_path=None)
    assert [c["purl"] for c in doc["components"]] == ["pkg:pypi/a@1", "pkg:pypi/b-c@2"]
    assert not any("hashes" in c or "properties" in c for c in doc["components"])
    assert doc["metadata"]["component"]["hashes"] == [{"alg": "SHA-256", "content": "3" * 64}]
