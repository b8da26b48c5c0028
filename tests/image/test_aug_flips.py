"""Properties 3-4: flips and Transpose are exact involutions with a pinned coordinate convention."""
from __future__ import annotations

import albumentations as A
import pytest

import aug_properties as P
from aug_cases import case_id, case_params, make_case

CASES = case_params()


@pytest.mark.parametrize("transform_cls", [A.HorizontalFlip, A.VerticalFlip, A.Transpose], ids=lambda c: c.__name__)
@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_flip_twice_restores_image_mask_boxes_keypoints(params: tuple[int, int, int], transform_cls: type) -> None:
    P.check_flip_twice_restores(make_case(*params), transform_cls)


@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_hflip_maps_pascal_box_to_W_minus_x2_and_keypoint_x_to_W_minus_1_minus_x(params: tuple[int, int, int]) -> None:
    """Boxes live on pixel edges ([x1,y1,x2,y2] -> [W-x2,y1,W-x1,y2]); keypoints on pixel centres
    (x -> W-1-x). The keypoint convention is albumentations' own (keypoints_hflip) and pinned here,
    so a change of convention in a future release fails this test instead of shifting labels by 1 px."""
    P.check_flip_mapping(make_case(*params), "horizontal")


@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_vflip_maps_pascal_box_to_H_minus_y2_and_keypoint_y_to_H_minus_1_minus_y(params: tuple[int, int, int]) -> None:
    P.check_flip_mapping(make_case(*params), "vertical")
