"""The builder's decisions without a daemon: comparing what an image contains with
what its variant promises (the gate before any tag), cuDNN's integer encoding, tags."""

from __future__ import annotations

from pathlib import Path

import pytest
from dlbase.build import builder as build
from dlbase.define import tags
from dlbase.define.project import Project
from dlbase.define.spec import BuildSpec

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def spec() -> BuildSpec:
    project = Project.discover(ROOT)
    return BuildSpec.of(project.compat, project.matrix.get("torch2.6-cu124-runtime-debian12"))


@pytest.fixture
def probe(spec: BuildSpec) -> dict:
    """What the probe reads from a correct image of the variant."""
    want = spec.versions()
    return {"torch": want["torch"], "torch_full": f"{want['torch']}+cu124", "torchvision": want["torchvision"],
            "cuda": want["cuda"], "python": want["python"], "albumentations": want["albumentations"],
            "opencv": want["opencv"], "numpy": want["numpy"], "cudnn_int": 90100, "cudnn_wheel": "9.1.0.70",
            "opencv_gui": None, "opencv_contrib": None, "cv2": "4.11.0"}


def test_the_variant_promises_what_the_facts_say(spec: BuildSpec) -> None:
    want = spec.versions()
    assert (want["torch"], want["torchvision"], want["cuda"], want["cudnn"]) == ("2.6.0", "0.21.0", "12.4", "9.1.0.70")


def test_a_correct_image_has_no_problems(spec: BuildSpec, probe: dict) -> None:
    assert build.compare(spec, probe) == []


@pytest.mark.parametrize("key, value", [
    ("torch", "2.5.1"), ("torchvision", "0.17.0"), ("cuda", "12.1"), ("python", "3.10"),
    ("albumentations", "1.4.18"), ("opencv", "4.10.0.84"), ("numpy", "1.26.4"),
    ("torch", None), ("numpy", None),
])
def test_each_version_mismatch_is_named(spec: BuildSpec, probe: dict, key: str, value: str | None) -> None:
    problems = build.compare(spec, {**probe, key: value})
    want = spec.versions()[key]
    assert problems == [f"{key}: image has {value!r}, variant says {want!r}"]


def test_every_problem_is_reported_at_once(spec: BuildSpec, probe: dict) -> None:
    problems = build.compare(spec, {**probe, "torch": "2.5.1", "torchvision": "0.20.1", "numpy": "1.26.4"})
    assert [p.split(":")[0] for p in problems] == ["torch", "torchvision", "numpy"]


@pytest.mark.parametrize("reported", [8907, 90000, 90501, 0])
def test_cudnn_is_compared_in_its_integer_encoding(spec: BuildSpec, probe: dict, reported: int) -> None:
    problems = build.compare(spec, {**probe, "cudnn_int": reported})
    assert problems == [f"cudnn: image reports {reported}, the cu124 line brings 9.1.0.70 (90100)"]


def test_cudnn_falls_back_to_the_wheel_version_without_torch_cudnn(spec: BuildSpec, probe: dict) -> None:
    assert build.compare(spec, {**probe, "cudnn_int": None}) == []
    assert build.compare(spec, {**probe, "cudnn_int": None, "cudnn_wheel": None,
                                "cudnn_wheel_cu11": "9.1.0.70"}) == []
    problems = build.compare(spec, {**probe, "cudnn_int": None, "cudnn_wheel": "8.9.2.26"})
    assert problems == ["cudnn: image has cuDNN wheel '8.9.2.26', the line brings 9.1.0.70"]


@pytest.mark.parametrize("extra", ["opencv_gui", "opencv_contrib"])
def test_a_second_opencv_beside_the_headless_one_is_refused(spec: BuildSpec, probe: dict, extra: str) -> None:
    problems = build.compare(spec, {**probe, extra: "4.11.0.86"})
    assert problems == [f"{extra}: a second OpenCV (4.11.0.86) is installed beside the headless one"]


def test_both_extra_opencvs_are_each_named(spec: BuildSpec, probe: dict) -> None:
    problems = build.compare(spec, {**probe, "opencv_gui": "4.10.0.84", "opencv_contrib": "4.11.0.86"})
    assert len(problems) == 2 and problems[0].startswith("opencv_gui") and problems[1].startswith("opencv_contrib")


def test_import_failures_are_problems_even_with_matching_metadata(spec: BuildSpec, probe: dict) -> None:
    problems = build.compare(spec, {**probe, "torch_error": "ImportError('libcudnn.so.9')",
                                    "cv2_error": "ImportError('libGL.so.1')"})
    assert problems == ["torch does not import: ImportError('libcudnn.so.9')",
                        "cv2 does not import: ImportError('libGL.so.1')"]


def test_an_image_without_the_stack_lists_everything(spec: BuildSpec) -> None:
    """What the small test project's image reads as: only Python."""
    problems = build.compare(spec, {"python": "3.11", "torch_error": "ModuleNotFoundError(\"No module named 'torch'\")"})
    keys = [p.split(":")[0] for p in problems]
    assert keys[:6] == ["torch", "torchvision", "cuda", "albumentations", "opencv", "numpy"]
    assert "cudnn" in keys and "torch does not import" in keys


@pytest.mark.parametrize("version, encoded", [("9.1.0.70", 90100), ("9.5.1.17", 90501), ("9.1.0", 90100),
                                              ("8.9.7.29", 8907), ("8.6.0", 8600)])
def test_cudnn_int(version: str, encoded: int) -> None:
    assert build.cudnn_int(version) == encoded


@pytest.mark.parametrize("encoded, text", [(90100, "9.1.0"), (90501, "9.5.1"), (8907, "8.9.7")])
def test_cudnn_text_for_the_tag_decodes_the_integer(spec: BuildSpec, probe: dict, encoded: int, text: str) -> None:
    assert build.cudnn_text({**probe, "cudnn_int": encoded}, spec) == text


def test_cudnn_text_without_an_integer_uses_the_wheel(spec: BuildSpec) -> None:
    assert build.cudnn_text({"cudnn_int": None, "cudnn_wheel": "9.1.0.70"}, spec) == "9.1.0.70"
    assert build.cudnn_text({}, spec) == spec.line.cudnn


# ---------------------------------------------------------------- tags


def test_immutable_tag_names_what_is_inside() -> None:
    tag = tags.immutable_tag(torch="2.6.0", cuda="12.4", cudnn="9.1.0", python="3.11", flavor="runtime",
                             os_name="debian12", lock_hash="1a2b3c4d5e6f")
    assert tag == "2.6.0-cuda12.4-cudnn9-py3.11-runtime-debian12-1a2b3c4d5e6f"


def test_immutable_tag_changes_with_the_lock() -> None:
    args = dict(torch="2.6.0", cuda="12.4", cudnn="9.1.0", python="3.11", flavor="runtime", os_name="debian12")
    assert tags.immutable_tag(**args, lock_hash="aaaaaaaaaaaa") != tags.immutable_tag(**args, lock_hash="bbbbbbbbbbbb")


def test_moving_tag_follows_the_line() -> None:
    assert tags.moving_tag(torch="2.6.0", line="cu124", flavor="runtime", os_name="debian12") == \
        "2.6-cu124-runtime-debian12"
    assert tags.moving_tag(torch="2.6.1", line="cu118", flavor="devel", os_name="ubuntu22.04") == \
        "2.6-cu118-devel-ubuntu22.04"


def test_the_lock_placeholder_is_a_valid_stand_in() -> None:
    tag = tags.immutable_tag(torch="2.6.0", cuda="11.8", cudnn="9.1.0", python="3.10", flavor="runtime",
                             os_name="ubuntu22.04", lock_hash=tags.LOCK_PLACEHOLDER)
    assert tag.endswith("-<lock>")


@pytest.mark.parametrize("bad", ["has space", "a/b", "x" * 200, "-leading-dash"])
def test_invalid_tags_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        tags.moving_tag(torch="2.6.0", line=bad, flavor="runtime", os_name="debian12") if bad != "-leading-dash" \
            else tags._valid(bad)
