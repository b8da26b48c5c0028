"""Property 8: filtering (crops, min_visibility, min_area, clipping) keeps labels with their boxes."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

import aug_properties as P
from known_bugs import known_bug
from aug_cases import case_id, case_params, make_case

CASES = case_params()

# (transform factory, does it keep the pixel scale) - only scale-free crops let a pixel count
# decide independently whether a box had to be dropped.
FILTERING = {
    "Crop": (lambda h, w: [A.Crop(x_min=w // 3, y_min=h // 4, x_max=w - 2, y_max=h - h // 5, p=1.0)], True),
    "RandomCrop": (lambda h, w: [A.RandomCrop(height=h // 2, width=w // 2, p=1.0)], True),
    "CenterCrop": (lambda h, w: [A.CenterCrop(height=h // 2 + 1, width=w // 2 + 1, p=1.0)], True),
    "Affine-shift": (lambda h, w: [A.Affine(translate_percent=(-0.3, 0.3), rotate=0, p=1.0)], True),
    "RandomSizedBBoxSafeCrop": (lambda h, w: [A.RandomSizedBBoxSafeCrop(height=h, width=w, p=1.0)], False),
    "RandomResizedCrop": (lambda h, w: [A.RandomResizedCrop(size=(h, w), scale=(0.2, 0.6), p=1.0)], False),
}
THRESHOLDS = {
    "min_visibility=0.4": {"min_visibility": 0.4},
    "min_area=150": {"min_area": 150.0},
    "both": {"min_visibility": 0.25, "min_area": 60.0},
}


@pytest.mark.parametrize("threshold", sorted(THRESHOLDS))
@pytest.mark.parametrize("name", sorted(FILTERING))
@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_filtered_boxes_match_label_fields_and_keep_their_labels(params: tuple[int, int, int], name: str,
                                                                 threshold: str) -> None:
    factory, scale_free = FILTERING[name]
    P.check_filtering_keeps_labels_with_boxes(make_case(*params), factory, scale_free, **THRESHOLDS[threshold])


@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_clipping_boxes_that_leave_the_image_keeps_every_box_and_label(params: tuple[int, int, int]) -> None:
    P.check_clipping_keeps_counts(make_case(*params))


@known_bug(
    "2.0.8",
    "albumentations 2.0.8 carries numeric label fields as float32 and returns a list of Python "
    "floats: int labels change type, and ids above 2**24 change value (LabelManager._encode_data)",
)
def test_integer_labels_keep_type_and_value() -> None:
    """Labels are often dataset ids; an id must come back as the same int, not a nearby float."""
    case = make_case(0, 64, 64)
    labels = [2**24 + 1 + k for k in range(len(case.boxes))]
    out = A.Compose([A.HorizontalFlip(p=1.0)], bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
                    strict=True, seed=0)(image=case.image, bboxes=case.boxes, labels=labels)
    assert all(type(v) is int for v in out["labels"]), f"labels came back as {[type(v).__name__ for v in out['labels']]}"
    assert out["labels"] == labels, f"labels {labels} came back as {out['labels']}"


def test_numpy_integer_labels_keep_dtype() -> None:
    """The workaround the suite's DataLoader relies on: labels as an int64 array keep their dtype."""
    case = make_case(0, 64, 64)
    labels = np.arange(len(case.boxes), dtype=np.int64) + 5
    out = A.Compose([A.HorizontalFlip(p=1.0)], bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
                    strict=True, seed=0)(image=case.image, bboxes=case.boxes, labels=labels)
    assert np.asarray(out["labels"]).dtype == np.int64
    assert np.array_equal(out["labels"], labels)
