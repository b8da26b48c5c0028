"""Properties 9-10: masks keep their values and size; pixel-only transforms leave targets alone;
empty box and keypoint lists pass through every spatial transform."""
from __future__ import annotations

import inspect

import albumentations as A
import numpy as np
import pytest

import aug_properties as P
from known_bugs import known_bug
from aug_cases import case_id, case_params, make_case
from aug_transforms import AXIS_ALIGNED, NON_AXIS_ALIGNED, PIXEL_ONLY

CASES = case_params()
SPATIAL = {**AXIS_ALIGNED, **NON_AXIS_ALIGNED,
           "ElasticTransform": lambda h, w: [A.ElasticTransform(p=1.0)],
           "GridDistortion": lambda h, w: [A.GridDistortion(p=1.0)],
           "OpticalDistortion": lambda h, w: [A.OpticalDistortion(p=1.0)]}


@pytest.mark.parametrize("name", sorted(SPATIAL))
@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_mask_keeps_its_values_under_nearest_and_matches_image_size(params: tuple[int, int, int], name: str) -> None:
    P.check_mask_values_and_sizes(make_case(*params), SPATIAL[name])


@pytest.mark.parametrize("name", sorted(PIXEL_ONLY))
@pytest.mark.parametrize("params", CASES, ids=case_id)
def test_pixel_only_transform_leaves_boxes_masks_keypoints_untouched(params: tuple[int, int, int], name: str) -> None:
    P.check_pixel_only_leaves_targets(make_case(*params), PIXEL_ONLY[name])


# Spatial transforms whose constructor needs arguments: the values only have to be valid.
REQUIRED_ARGS: dict[str, dict] = {
    "AtLeastOneBBoxRandomCrop": {"height": 32, "width": 40},
    "BBoxSafeRandomCrop": {},
    "CenterCrop": {"height": 32, "width": 40},
    "Crop": {"x_min": 3, "y_min": 5, "x_max": 70, "y_max": 50},
    "CropAndPad": {"px": 4},
    "CropNonEmptyMaskIfExists": {"height": 32, "width": 40},
    "GridElasticDeform": {"num_grid_xy": (4, 4), "magnitude": 5},
    "LongestMaxSize": {"max_size": 50},
    "SmallestMaxSize": {"max_size": 50},
    "RandomCrop": {"height": 32, "width": 40},
    "RandomResizedCrop": {"size": (48, 56)},
    "RandomSizedBBoxSafeCrop": {"height": 48, "width": 56},
    "RandomSizedCrop": {"min_max_height": (30, 50), "size": (48, 56)},
    "Resize": {"height": 48, "width": 56},
}
# Data some transforms require in the call (empty lists are valid values).
EXTRA_DATA: dict[str, dict] = {
    "Mosaic": {"mosaic_metadata": []},
    "OverlayElements": {"overlay_metadata": []},
    "RandomCropNearBBox": {"cropping_bbox": [10, 10, 40, 40]},
}
# Warnings a transform gives, by design, when handed nothing to act on; expected, so matched exactly.
EXPECTED_WARNINGS: dict[str, str] = {
    "ConstrainedCoarseDropout": "Neither valid mask nor bboxes provided",
}
# Known failures of the installed release, pinned so a fix shows up as XPASS (strict).
KNOWN_FAILURES: dict[str, str] = {
    "Mosaic": "albumentations 2.0.8 Mosaic raises IndexError on an empty bboxes list ('tuple index out of "
    "range') and on an empty keypoints list (1-D array indexed as 2-D in process_cell_geometry)",
}
# Transforms that by design do not carry boxes or keypoints at all.
NOT_BOX_AWARE: dict[str, str] = {
    "OverlayElements": "pastes overlays into image and mask only; it raises NotImplementedError for bboxes",
}
# Deprecated aliases that refuse to be built without a warning; each is covered through the
# transform it aliases (ShiftScaleRotate -> Affine, TimeReverse -> HorizontalFlip, ...).
DEPRECATED_ALIASES = {"ShiftScaleRotate", "PiecewiseAffine", "FrequencyMasking", "TimeMasking", "TimeReverse"}


def spatial_transform_names() -> list[str]:
    """Every 2D spatial (DualTransform) class albumentations exports, found at run time."""
    from albumentations.core.transforms_interface import DualTransform

    try:
        from albumentations.core.transforms_interface import Transform3D
    except ImportError:  # pragma: no cover - older releases have no 3D transforms
        Transform3D = ()  # type: ignore[assignment]
    names = []
    for name in dir(A):
        obj = getattr(A, name)
        if inspect.isclass(obj) and issubclass(obj, DualTransform) and obj is not DualTransform:
            if Transform3D and issubclass(obj, Transform3D):
                continue
            if name in DEPRECATED_ALIASES or inspect.isabstract(obj):
                continue
            names.append(name)
    return sorted(names)


def _empty_target_params() -> list:
    return [pytest.param(name, marks=known_bug("2.0.8", KNOWN_FAILURES[name]))
            if name in KNOWN_FAILURES else name for name in spatial_transform_names()]


@pytest.mark.parametrize("name", _empty_target_params())
def test_empty_box_and_keypoint_lists_pass_through_spatial_transform(name: str) -> None:
    if name in NOT_BOX_AWARE:
        pytest.skip(f"A.{name} {NOT_BOX_AWARE[name]}")
    image = np.random.default_rng(0).integers(0, 256, (64, 80, 3), dtype=np.uint8)
    try:
        transform = getattr(A, name)(p=1.0, **REQUIRED_ARGS.get(name, {}))
    except Exception as exc:  # noqa: BLE001 - a new transform needs an entry, say so
        pytest.fail(f"cannot build A.{name} with defaults ({exc!s:.200}); add its arguments to REQUIRED_ARGS")
    if name in EXPECTED_WARNINGS:
        with pytest.warns(UserWarning, match=EXPECTED_WARNINGS[name]):
            P.check_empty_targets_pass(transform, image, seed=0, **EXTRA_DATA.get(name, {}))
    else:
        P.check_empty_targets_pass(transform, image, seed=0, **EXTRA_DATA.get(name, {}))


def test_every_spatial_transform_is_covered_by_the_empty_target_test() -> None:
    """Guards against the enumeration silently finding nothing (an API rename, say)."""
    names = spatial_transform_names()
    assert len(names) >= 30 and {"HorizontalFlip", "Affine", "RandomSizedBBoxSafeCrop", "Perspective"} <= set(names)
