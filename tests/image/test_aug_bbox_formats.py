"""Properties 1-2: box formats (coco, pascal_voc, yolo) mean one physical box."""
from __future__ import annotations

import albumentations as A
import pytest

import aug_properties as P
from aug_cases import case_id, case_params, make_case

CASES = case_params()


def seeded_geometry(h: int, w: int) -> list:
    """A random geometric pipeline: every random draw must be independent of the box format."""
    return [
        A.Affine(scale=(0.8, 1.2), translate_percent=(-0.1, 0.1), rotate=(-20, 20), p=1.0),
        A.RandomSizedBBoxSafeCrop(height=h, width=w, p=1.0),
        A.HorizontalFlip(p=0.5),
        A.Resize(height=h + 13, width=w + 5, p=1.0),
    ]


@pytest.mark.parametrize("fmt", P.BOX_FORMATS)
@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_box_in_each_format_converts_to_internal_form_and_back(params: tuple[int, int, int], fmt: str) -> None:
    P.check_bbox_format_roundtrip(make_case(*params), fmt)


@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_same_box_in_three_formats_comes_out_the_same_through_seeded_geometry(params: tuple[int, int, int]) -> None:
    P.check_same_box_same_result_in_all_formats(make_case(*params), seeded_geometry)
