"""The real thing: the default variant (torch 2.6.0 cu124, torchvision 0.21.0,
albumentations 2.0.8, opencv-python-headless 4.11.0.86 on Debian 12) built through
`dlbase build`, tagged only after its versions were read back from inside it."""

from __future__ import annotations

import re

import pytest

from dlbase.engine import Engine
from dlbase.define.project import Project
from dlbase.define.spec import BuildSpec

pytestmark = pytest.mark.slow


def test_default_image_is_tagged_with_what_it_contains(default_image: dict, engine: Engine) -> None:
    project = Project.discover()
    spec = BuildSpec.of(project.compat, project.matrix.default_variant)
    probe = default_image["probe"]
    assert probe["torch"] == "2.6.0" and probe["torchvision"] == "0.21.0"
    assert probe["cuda"] == "12.4" and probe["cudnn_int"] == 90100
    assert probe["albumentations"] == "2.0.8" and probe["opencv"] == "4.11.0.86"
    assert probe["opencv_gui"] is None, "only the headless OpenCV may be installed"
    tag = default_image["immutable_tag"].split(":", 1)[1]
    assert re.fullmatch(r"2\.6\.0-cuda12\.4-cudnn9-py3\.11-runtime-debian12-[0-9a-f]{12}", tag)
    assert tag.endswith(default_image["lock_hash"])
    # Both tags point at the image that was read back.
    for ref in default_image["tags"]:
        assert engine.inspect_image(ref)["Id"] == default_image["image_id"]
    labels = engine.image_labels(default_image["image_id"])
    assert labels["dlbase.torch"] == spec.release.torch
    assert labels["dlbase.lock-hash"] == default_image["lock_hash"]
    assert labels["org.opencontainers.image.base.digest"].startswith("sha256:")

# The image's own suite (tests/image) runs inside this image in test_verify.py, through
# `dlbase verify`, which is how users run it.
