"""The in-image suite fails when albumentations misbehaves.

A property suite that passes against a broken library proves nothing, so here the library is
broken on purpose (monkeypatched) and the suite's properties must fail: directly, by calling
the importable check_* functions, and end to end, by running the matching pytest test in a
subprocess with a patching plugin. Needs albumentations on the host; skips with the reason if not.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

A = pytest.importorskip("albumentations", reason="albumentations is not importable in this venv; "
                        "the image-suite self-test needs it (use .venv-image)")
np = pytest.importorskip("numpy")

# Beside tests/unit in the repository; inside an image the suite lives at /opt/dlbase/tests
# (tests/integration runs this file there, where albumentations is installed).
IMAGE_SUITE = Path(os.environ.get("DLBASE_IMAGE_SUITE", Path(__file__).resolve().parents[1] / "image"))


@pytest.fixture()
def props(monkeypatch: pytest.MonkeyPatch):
    """The image suite's property module, imported the way the suite imports it."""
    monkeypatch.syspath_prepend(str(IMAGE_SUITE))
    import aug_cases
    import aug_properties

    return aug_properties, aug_cases


def _drop_last_row(self, mask, *args, **params):  # noqa: ANN001 - mirrors albumentations' signature
    out = self.apply(mask, *args, **params).copy()
    out[-1] = 0
    return out


def _shift_boxes_right_1px(original):
    def apply_to_bboxes(self, bboxes, **params):  # noqa: ANN001
        out = original(self, bboxes, **params).copy()
        out[:, [0, 2]] += 1.0 / params["shape"][1]
        return out
    return apply_to_bboxes


def test_flip_twice_property_passes_on_the_real_library(props) -> None:
    P, C = props
    P.check_flip_twice_restores(C.make_case(0, 97, 131), A.VerticalFlip)


def test_flip_twice_property_fails_when_vflip_drops_the_masks_last_row(props, monkeypatch) -> None:
    P, C = props
    monkeypatch.setattr(A.VerticalFlip, "apply_to_mask", _drop_last_row)
    with pytest.raises(AssertionError, match="VerticalFlip twice changed mask"):
        P.check_flip_twice_restores(C.make_case(0, 97, 131), A.VerticalFlip)


def test_hflip_mapping_property_fails_when_hflip_shifts_boxes_by_1px(props, monkeypatch) -> None:
    P, C = props
    monkeypatch.setattr(A.HorizontalFlip, "apply_to_bboxes", _shift_boxes_right_1px(A.HorizontalFlip.apply_to_bboxes))
    with pytest.raises(AssertionError, match="box mapping"):
        P.check_flip_mapping(C.make_case(1, 64, 64), "horizontal")


def test_mask_box_property_fails_when_hflip_shifts_boxes_by_2px(props, monkeypatch) -> None:
    P, C = props
    shifted = _shift_boxes_right_1px(A.HorizontalFlip.apply_to_bboxes)
    monkeypatch.setattr(A.HorizontalFlip, "apply_to_bboxes",
                        lambda self, b, **p: shifted(self, shifted(self, b, **p), **p))
    with pytest.raises(AssertionError, match="mask rectangle"):
        P.check_mask_rectangle_matches_box(C.make_case(2, 120, 81), lambda h, w: [A.HorizontalFlip(p=1.0)])


def test_keypoint_convention_property_fails_when_hflip_uses_pixel_edges(props, monkeypatch) -> None:
    P, C = props

    def edge_convention(self, keypoints, **params):  # noqa: ANN001
        out = keypoints.copy()
        out[:, 0] = params["shape"][1] - keypoints[:, 0]
        return out

    monkeypatch.setattr(A.HorizontalFlip, "apply_to_keypoints", edge_convention)
    with pytest.raises(AssertionError, match="keypoint mapping"):
        P.check_flip_mapping(C.make_case(0, 50, 203), "horizontal")


def test_filtering_property_fails_when_labels_are_shuffled(props, monkeypatch) -> None:
    P, C = props
    original = A.Crop.apply_to_bboxes

    def reversed_rows(self, bboxes, **params):  # noqa: ANN001 - boxes swap places, labels do not
        out = original(self, bboxes, **params).copy()
        out[:, :4] = out[::-1, :4]
        return out

    monkeypatch.setattr(A.Crop, "apply_to_bboxes", reversed_rows)
    with pytest.raises(AssertionError):
        P.check_filtering_keeps_labels_with_boxes(
            C.make_case(0, 97, 131), lambda h, w: [A.Crop(x_min=5, y_min=5, x_max=w - 5, y_max=h - 5)], True)


PLUGIN = """
import albumentations as A

def _drop_last_row(self, mask, *args, **params):
    out = self.apply(mask, *args, **params).copy()
    out[-1] = 0
    return out

A.VerticalFlip.apply_to_mask = _drop_last_row
"""


def run_image_test(tmp_path: Path, selector: str, plugin: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ, NO_ALBUMENTATIONS_UPDATE="1")
    args = [sys.executable, "-m", "pytest", str(IMAGE_SUITE / "test_aug_flips.py"), "-k", selector,
            "-p", "no:cacheprovider", "-q"]
    if plugin:
        (tmp_path / "break_albumentations.py").write_text(textwrap.dedent(plugin))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
        args += ["-p", "break_albumentations"]
    return subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_image_suite_flip_test_fails_end_to_end_against_a_broken_vertical_flip(tmp_path: Path) -> None:
    selector = "test_flip_twice_restores_image_mask_boxes_keypoints and VerticalFlip and seed0"
    clean = run_image_test(tmp_path, selector, plugin=None)
    assert clean.returncode == 0, f"the unpatched run should pass:\n{clean.stdout[-3000:]}\n{clean.stderr[-2000:]}"
    broken = run_image_test(tmp_path, selector, plugin=PLUGIN)
    assert broken.returncode == 1, f"the patched run should fail:\n{broken.stdout[-3000:]}\n{broken.stderr[-2000:]}"
    assert "VerticalFlip twice changed mask" in broken.stdout and "4 failed" in broken.stdout
