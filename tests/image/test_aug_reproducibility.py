"""Property 11 (first half): the same seed reproduces every target exactly.

The DataLoader half (workers get different streams) lives in test_dataloader.py.
"""
from __future__ import annotations

import albumentations as A
import pytest

import aug_properties as P
from aug_cases import case_id, case_params, make_case


def busy_pipeline(h: int, w: int) -> list:
    """Geometry, cropping, filtering-prone and pixel randomness together."""
    return [
        A.RandomSizedBBoxSafeCrop(height=h, width=w, p=0.7),
        A.Affine(scale=(0.8, 1.2), rotate=(-25, 25), translate_percent=(-0.1, 0.1), p=0.8),
        A.HorizontalFlip(p=0.5),
        A.RandomBrightnessContrast(p=0.5),
        A.GaussNoise(p=0.5),
        A.CoarseDropout(num_holes_range=(1, 3), hole_height_range=(4, 8), hole_width_range=(4, 8), p=0.5),
    ]


@pytest.mark.parametrize("params", case_params(), ids=case_id)
def test_same_seed_reproduces_image_masks_boxes_keypoints_labels_exactly(params: tuple[int, int, int]) -> None:
    P.check_seed_reproduces(make_case(*params), busy_pipeline)


def test_different_seeds_give_different_augmentations() -> None:
    """Without this, a pipeline that ignores its seed entirely would pass the test above."""
    case = make_case(0, 97, 131)
    outs = [P.apply(P.compose(busy_pipeline(case.height, case.width), seed=s), case) for s in range(4)]
    assert any(P.outputs_equal(outs[0], o) for o in outs[1:]), "four seeds produced identical outputs"
