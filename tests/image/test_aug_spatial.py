"""Properties 5-7: boxes, masks and keypoints stay on the same object under spatial transforms."""
from __future__ import annotations

import albumentations as A
import pytest

import aug_properties as P
from known_bugs import known_bug
from aug_cases import case_id, case_params, make_case
from aug_transforms import AXIS_ALIGNED, NON_AXIS_ALIGNED

CASES = case_params()


@pytest.mark.parametrize("name", sorted(AXIS_ALIGNED))
@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_mask_rectangle_matches_box_within_1px_under_axis_aligned_transform(params: tuple[int, int, int],
                                                                           name: str) -> None:
    P.check_mask_rectangle_matches_box(make_case(*params), AXIS_ALIGNED[name])


@pytest.mark.parametrize("name", sorted(NON_AXIS_ALIGNED))
@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_box_contains_mask_under_rotation_shear_perspective(params: tuple[int, int, int], name: str) -> None:
    P.check_box_contains_mask(make_case(*params), NON_AXIS_ALIGNED[name])


BLOB_TRANSFORMS = {**AXIS_ALIGNED, **NON_AXIS_ALIGNED}
# Upscaling by s moves a keypoint to x*s (albumentations' keypoints_scale), but the pixel whose
# centre was at x moves to (x+0.5)*s-0.5 (OpenCV's resize, and albumentations' own flips, use
# pixel centres: HorizontalFlip sends keypoint x to W-1-x). The two disagree by 0.5*(s-1) px per
# axis, so for s > 2 a keypoint leaves its own blob by more than half a pixel.
KEYPOINT_SCALE_REASON = (
    "albumentations 2.0.8 scales keypoints as x*s (pixel-corner convention) while flips and OpenCV "
    "use pixel centres ((x+0.5)*s-0.5): an upscale by s shifts keypoints 0.5*(s-1) px off their pixels"
)
UPSCALING: dict = {
    "Resize-3x": lambda h, w: [A.Resize(height=3 * h, width=3 * w, p=1.0)],
    "RandomResizedCrop-2.5x": lambda h, w: [
        A.RandomResizedCrop(size=(h, w), scale=(0.16, 0.16), ratio=(w / h, w / h), p=1.0)
    ],
}


@pytest.mark.parametrize("name", sorted(BLOB_TRANSFORMS))
@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_blob_drawn_at_keypoint_stays_within_half_pixel_of_keypoint(params: tuple[int, int, int], name: str) -> None:
    P.check_keypoint_follows_blob(make_case(*params, n_keypoints=14, margin=8), BLOB_TRANSFORMS[name])


@known_bug("2.0.8", KEYPOINT_SCALE_REASON)
@pytest.mark.parametrize("name", sorted(UPSCALING))
@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_blob_drawn_at_keypoint_stays_within_half_pixel_of_keypoint_when_upscaling(params: tuple[int, int, int],
                                                                                  name: str) -> None:
    P.check_keypoint_follows_blob(make_case(*params, n_keypoints=14, margin=8), UPSCALING[name])
