"""The augmentation properties as importable functions.

Each check_* function runs albumentations as installed and raises AssertionError with a
sentence-like message when the property does not hold. Tests call them over generated
cases; tests/unit/test_image_suite_selftest.py calls them against a deliberately broken
library to show that they fail.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import albumentations as A
import cv2
import numpy as np
from albumentations.core.bbox_utils import (
    convert_bboxes_from_albumentations,
    convert_bboxes_to_albumentations,
)

from aug_cases import Case

BOX_FORMATS = ("coco", "pascal_voc", "yolo")
FLIP_TOL_PX = 1e-4


# ---------------------------------------------------------------- format helpers
def pascal_to(boxes: np.ndarray, fmt: str, height: int, width: int) -> np.ndarray:
    """Express pascal_voc boxes in another format, computed here in float64 (not by the library)."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = b.T
    if fmt == "pascal_voc":
        return b.copy()
    if fmt == "coco":
        return np.stack([x1, y1, x2 - x1, y2 - y1], axis=1)
    if fmt == "yolo":
        return np.stack([(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height], axis=1)
    raise ValueError(fmt)


def to_pascal(boxes: Any, fmt: str, height: int, width: int) -> np.ndarray:
    """Inverse of pascal_to, for comparing outputs given in different formats."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if fmt == "pascal_voc":
        return b.copy()
    if fmt == "coco":
        return np.stack([b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]], axis=1)
    if fmt == "yolo":
        cx, cy, bw, bh = b[:, 0] * width, b[:, 1] * height, b[:, 2] * width, b[:, 3] * height
        return np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
    raise ValueError(fmt)


def mask_box(mask: np.ndarray) -> np.ndarray | None:
    """The pascal_voc box (pixel edges) of a mask's non-zero pixels, or None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=np.float64)


def compose(transforms: Sequence, seed: int, fmt: str = "pascal_voc", mask_interpolation: int | None = None,
            **bbox_kwargs: Any) -> A.Compose:
    """A strict Compose carrying boxes (with labels and ids) and keypoints (with labels)."""
    return A.Compose(
        list(transforms),
        bbox_params=A.BboxParams(format=fmt, label_fields=["labels", "box_ids"], **bbox_kwargs),
        keypoint_params=A.KeypointParams(format="xy", label_fields=["kp_labels"], remove_invisible=True),
        strict=True,
        seed=seed,
        mask_interpolation=mask_interpolation,
    )


def apply(pipeline: A.Compose, case: Case, boxes: np.ndarray | None = None, image: np.ndarray | None = None,
          keypoints: np.ndarray | None = None, with_masks: bool = True) -> dict[str, Any]:
    """Run a pipeline on a case, all targets together."""
    data: dict[str, Any] = {
        "image": case.image if image is None else image,
        "bboxes": case.boxes if boxes is None else boxes,
        "labels": list(case.labels),
        "box_ids": list(range(len(case.boxes))),
        "keypoints": case.keypoints if keypoints is None else keypoints,
        "kp_labels": list(case.keypoint_labels),
    }
    if with_masks:
        data["masks"] = list(case.box_masks)
    return pipeline(**data)


def _boxes(out: dict[str, Any]) -> np.ndarray:
    return np.asarray(out["bboxes"], dtype=np.float64).reshape(-1, 4)


def _ints(values: Any) -> list[int]:
    """Label fields as ints: albumentations 2.0.x hands numeric labels back as floats (see
    test_integer_labels_keep_type_and_value), which would make list comparisons fail for the wrong reason."""
    return [int(round(float(v))) for v in values]


def _kps(out: dict[str, Any]) -> np.ndarray:
    return np.asarray(out["keypoints"], dtype=np.float64).reshape(-1, 2)


# ---------------------------------------------------------------- property 1
def check_bbox_format_roundtrip(case: Case, fmt: str) -> None:
    """A box in coco/pascal_voc/yolo converts to the internal (normalised x1,y1,x2,y2) form and back."""
    shape = {"height": case.height, "width": case.width}
    given = pascal_to(case.boxes, fmt, case.height, case.width)
    internal = convert_bboxes_to_albumentations(given, fmt, shape)
    expected_internal = case.boxes / np.array([case.width, case.height, case.width, case.height])
    np.testing.assert_allclose(internal[:, :4], expected_internal, rtol=1e-5, atol=0,
                               err_msg=f"{fmt} -> internal form is off for {case.ident}")
    back = convert_bboxes_from_albumentations(internal, fmt, shape)
    np.testing.assert_allclose(back[:, :4], given, rtol=1e-5, atol=0,
                               err_msg=f"{fmt} -> internal -> {fmt} does not give the box back for {case.ident}")
    # The same round trip through Compose's own pre/post-processing (NoOp in between: an empty
    # Compose with bbox_params warns that no transform processes boxes).
    out = compose([A.NoOp(p=1.0)], case.seed, fmt)(image=case.image, bboxes=given, labels=case.labels,
                                      box_ids=list(range(len(given))), keypoints=[], kp_labels=[])
    np.testing.assert_allclose(_boxes(out), given, rtol=1e-5, atol=0,
                               err_msg=f"Compose([]) changed {fmt} boxes for {case.ident}")


# ---------------------------------------------------------------- property 2
def check_same_box_same_result_in_all_formats(case: Case, transforms_factory: Any, tol_px: float = 1e-3) -> None:
    """The same physical box, given as coco, pascal_voc and yolo, ends up at one place."""
    results = {}
    for fmt in BOX_FORMATS:
        pipeline = compose(transforms_factory(case.height, case.width), case.seed, fmt)
        given = pascal_to(case.boxes, fmt, case.height, case.width)
        out = apply(pipeline, case, boxes=given, with_masks=False)
        oh, ow = out["image"].shape[:2]
        results[fmt] = (to_pascal(out["bboxes"], fmt, oh, ow), _ints(out["box_ids"]), out["image"])
    ref_boxes, ref_ids, ref_image = results["pascal_voc"]
    for fmt in ("coco", "yolo"):
        boxes, ids, image = results[fmt]
        assert np.array_equal(image, ref_image), f"{fmt} run drew different random parameters ({case.ident})"
        assert ids == ref_ids, f"{fmt} kept boxes {ids}, pascal_voc kept {ref_ids} ({case.ident})"
        np.testing.assert_allclose(boxes, ref_boxes, rtol=0, atol=tol_px,
                                   err_msg=f"the same box in {fmt} and pascal_voc came out apart ({case.ident})")


# ---------------------------------------------------------------- property 3
def check_flip_twice_restores(case: Case, transform_cls: type) -> None:
    """A flip (or Transpose) applied twice is the identity on every target."""
    pipeline = compose([transform_cls(p=1.0), transform_cls(p=1.0)], case.seed)
    out = apply(pipeline, case)
    name = transform_cls.__name__
    assert np.array_equal(out["image"], case.image), f"{name} twice changed the image ({case.ident})"
    for k, (got, want) in enumerate(zip(out["masks"], case.box_masks, strict=True)):
        assert np.array_equal(got, want), f"{name} twice changed mask {k} ({case.ident})"
    assert _ints(out["box_ids"]) == list(range(len(case.boxes))), f"{name} twice lost boxes ({case.ident})"
    np.testing.assert_allclose(_boxes(out), case.boxes, rtol=0, atol=FLIP_TOL_PX,
                               err_msg=f"{name} twice moved boxes ({case.ident})")
    assert _ints(out["kp_labels"]) == list(case.keypoint_labels), f"{name} twice lost keypoints ({case.ident})"
    np.testing.assert_allclose(_kps(out), case.keypoints, rtol=0, atol=FLIP_TOL_PX,
                               err_msg=f"{name} twice moved keypoints ({case.ident})")


# ---------------------------------------------------------------- property 4
def check_flip_mapping(case: Case, axis: str) -> None:
    """HorizontalFlip maps [x1,y1,x2,y2] to [W-x2,y1,W-x1,y2] (pixel-edge boxes) and keypoint x to
    W-1-x (albumentations treats keypoints as pixel centres: pixel 0's centre goes to pixel W-1's);
    VerticalFlip is the same on y."""
    cls = A.HorizontalFlip if axis == "horizontal" else A.VerticalFlip
    out = apply(compose([cls(p=1.0)], case.seed), case, with_masks=False)
    b = case.boxes
    W, H = case.width, case.height
    if axis == "horizontal":
        want = np.stack([W - b[:, 2], b[:, 1], W - b[:, 0], b[:, 3]], axis=1)
        want_kp = np.stack([(W - 1) - case.keypoints[:, 0], case.keypoints[:, 1]], axis=1)
    else:
        want = np.stack([b[:, 0], H - b[:, 3], b[:, 2], H - b[:, 1]], axis=1)
        want_kp = np.stack([case.keypoints[:, 0], (H - 1) - case.keypoints[:, 1]], axis=1)
    np.testing.assert_allclose(_boxes(out), want, rtol=0, atol=FLIP_TOL_PX,
                               err_msg=f"{cls.__name__} box mapping is not the pixel-edge mirror ({case.ident})")
    np.testing.assert_allclose(_kps(out), want_kp, rtol=0, atol=FLIP_TOL_PX,
                               err_msg=f"{cls.__name__} keypoint mapping is not the pixel-centre mirror ({case.ident})")


# ---------------------------------------------------------------- properties 5 and 6
def check_mask_rectangle_matches_box(case: Case, transforms_factory: Any, tol_px: float = 1.0) -> None:
    """Under an axis-aligned transform, each box's drawn rectangle and the box agree within 1 px."""
    out = apply(compose(transforms_factory(case.height, case.width), case.seed), case)
    assert out["image"].shape[:2] == out["masks"][0].shape[:2], "image and mask sizes differ"
    boxes, ids = _boxes(out), _ints(out["box_ids"])
    for box, k in zip(boxes, ids, strict=True):
        mbox = mask_box(out["masks"][k])
        if mbox is None:
            assert min(box[2] - box[0], box[3] - box[1]) <= tol_px, (
                f"box {k} survived as {box.round(2).tolist()} but its mask is empty ({case.ident})")
            continue
        diff = np.abs(box - mbox)
        assert diff.max() <= tol_px, (
            f"box {k} is {box.round(3).tolist()} but its mask rectangle is {mbox.tolist()} "
            f"(off by {diff.max():.3f} px, {case.ident})")
    for k in set(range(len(case.boxes))) - set(ids):
        mbox = mask_box(out["masks"][k])
        assert mbox is None or min(mbox[2] - mbox[0], mbox[3] - mbox[1]) <= tol_px, (
            f"box {k} was dropped although its mask still covers {mbox.tolist()} ({case.ident})")


def check_box_contains_mask(case: Case, transforms_factory: Any, tol_px: float = 1.0) -> None:
    """Under rotation, shear or perspective, the transformed box contains the transformed mask."""
    out = apply(compose(transforms_factory(case.height, case.width), case.seed), case)
    for box, k in zip(_boxes(out), _ints(out["box_ids"]), strict=True):
        mbox = mask_box(out["masks"][k])
        if mbox is None:
            continue
        outside = max(box[0] - mbox[0], box[1] - mbox[1], mbox[2] - box[2], mbox[3] - box[3])
        assert outside <= tol_px, (
            f"mask {k} at {mbox.tolist()} sticks out of its box {box.round(2).tolist()} "
            f"by {outside:.2f} px ({case.ident})")


# ---------------------------------------------------------------- property 7
BLOB_SIGMA = 1.5


def blob_stack(case: Case) -> np.ndarray:
    """One float32 channel per keypoint holding a Gaussian centred on that keypoint's pixel centre."""
    yy, xx = np.mgrid[0:case.height, 0:case.width].astype(np.float32)
    chans = [np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * BLOB_SIGMA**2)) for x, y in case.keypoints]
    return np.stack(chans, axis=-1).astype(np.float32)


def blob_centroid(channel: np.ndarray) -> tuple[np.ndarray, bool]:
    """Intensity-weighted centre of a blob (pixel-centre coordinates) and whether it lies whole inside."""
    w = np.where(channel > 0.02, channel, 0.0).astype(np.float64)
    total = w.sum()
    if total <= 0:
        return np.array([np.nan, np.nan]), False
    yy, xx = np.mgrid[0:channel.shape[0], 0:channel.shape[1]]
    c = np.array([(w * xx).sum() / total, (w * yy).sum() / total])
    margin = 4 * BLOB_SIGMA + 1
    inside = margin <= c[0] <= channel.shape[1] - 1 - margin and margin <= c[1] <= channel.shape[0] - 1 - margin
    return c, bool(inside)


def check_keypoint_follows_blob(case: Case, transforms_factory: Any, tol_px: float = 0.5) -> None:
    """A blob drawn at a keypoint stays within 0.5 px of the transformed keypoint."""
    blobs = blob_stack(case)
    out = apply(compose(transforms_factory(case.height, case.width), case.seed), case, image=blobs, with_masks=False)
    checked = 0
    for (x, y), k in zip(_kps(out), _ints(out["kp_labels"]), strict=True):
        centre, whole = blob_centroid(out["image"][..., k])
        if not whole:
            continue  # a blob cut by the border has a biased centroid; border keypoints are covered by flips
        checked += 1
        dist = float(np.hypot(centre[0] - x, centre[1] - y))
        assert dist <= tol_px, (
            f"keypoint {k} went to ({x:.2f}, {y:.2f}) but its blob to ({centre[0]:.2f}, {centre[1]:.2f}): "
            f"{dist:.2f} px apart ({case.ident})")
    assert checked or not len(case.keypoints), f"no keypoint stayed inside to check ({case.ident})"


# ---------------------------------------------------------------- property 8
def check_filtering_keeps_labels_with_boxes(case: Case, transforms_factory: Any, scale_free: bool,
                                            **bbox_kwargs: Any) -> None:
    """After filtering, every label field has one entry per box and each label stays with its box.

    When the transform does not rescale (scale_free), the decision itself is checked too: a box
    survives exactly when its visible part passes min_visibility and min_area.
    """
    out = apply(compose(transforms_factory(case.height, case.width), case.seed, **bbox_kwargs), case)
    boxes, ids, labels = _boxes(out), _ints(out["box_ids"]), _ints(out["labels"])
    assert len(boxes) == len(labels) == len(ids), (
        f"{len(boxes)} boxes but {len(labels)} labels and {len(ids)} ids ({case.ident})")
    assert len(out["keypoints"]) == len(out["kp_labels"]), "keypoints and their labels differ in number"
    assert labels == [case.labels[k] for k in ids], f"labels moved to other boxes ({case.ident})"
    for box, k in zip(boxes, ids, strict=True):
        mbox = mask_box(out["masks"][k])
        assert mbox is not None and np.abs(box - mbox).max() <= 1.0, (
            f"box {k} ({box.round(2).tolist()}) no longer sits on its own object {mbox} ({case.ident})")
    if not scale_free:
        return
    min_vis = bbox_kwargs.get("min_visibility", 0.0)
    min_area = bbox_kwargs.get("min_area", 0.0)
    for k, mask in enumerate(case.box_masks):
        visible = float(out["masks"][k].sum())
        fraction = visible / float(mask.sum())
        passes = fraction >= min_vis and visible >= min_area and visible > 0
        margin_vis = abs(fraction - min_vis) < 0.02 or abs(visible - min_area) < 2
        if margin_vis:
            continue  # too close to a threshold for a pixel count to decide
        assert passes == (k in ids), (
            f"box {k}: {fraction:.2f} visible, {visible:.0f} px; expected "
            f"{'kept' if passes else 'dropped'} but it was {'kept' if k in ids else 'dropped'} ({case.ident})")


def check_clipping_keeps_counts(case: Case) -> None:
    """Boxes sticking out of the image are clipped (clip=True) and keep their labels."""
    b = case.boxes.copy()
    b[:, 0] -= 2.5
    b[:, 3] += 3.0
    out = apply(compose([A.HorizontalFlip(p=1.0)], case.seed, clip=True), case, boxes=b, with_masks=False)
    boxes = _boxes(out)
    assert len(boxes) == len(out["labels"]) == len(out["box_ids"]) == len(b), "clipping dropped or duplicated boxes"
    assert boxes.min() >= 0 and (boxes[:, [0, 2]] <= case.width).all() and (boxes[:, [1, 3]] <= case.height).all(), \
        f"clipped boxes still leave the {case.width}x{case.height} image: {boxes.round(2).tolist()}"


# ---------------------------------------------------------------- property 9
def multi_value_mask(case: Case) -> np.ndarray:
    """A mask made of blocks with a few distinct class values (and 0 background)."""
    rng = np.random.default_rng(case.seed)
    mask = np.zeros((case.height, case.width), dtype=np.uint8)
    for value in (3, 7, 200, 255):
        x1, y1 = int(rng.integers(0, case.width - 4)), int(rng.integers(0, case.height - 4))
        mask[y1:y1 + int(rng.integers(4, 30)), x1:x1 + int(rng.integers(4, 30))] = value
    return mask


def check_mask_values_and_sizes(case: Case, transforms_factory: Any) -> None:
    """Nearest interpolation never invents mask values; image and mask sizes stay equal."""
    mask = multi_value_mask(case)
    pipeline = compose(transforms_factory(case.height, case.width), case.seed, mask_interpolation=cv2.INTER_NEAREST)
    out = pipeline(image=case.image, mask=mask, bboxes=case.boxes, labels=case.labels,
                   box_ids=list(range(len(case.boxes))), keypoints=[], kp_labels=[])
    assert out["image"].shape[:2] == out["mask"].shape[:2], (
        f"image {out['image'].shape[:2]} and mask {out['mask'].shape[:2]} differ ({case.ident})")
    new = set(np.unique(out["mask"]).tolist()) - set(np.unique(mask).tolist())
    assert not new, f"mask gained values {sorted(new)} that were never in it ({case.ident})"


def check_pixel_only_leaves_targets(case: Case, transforms_factory: Any) -> None:
    """Pixel-only transforms leave boxes, masks and keypoints untouched.

    NoOp joins the pipeline because a Compose whose transforms cannot touch boxes warns
    ("Got processor for bboxes, but no transform to process it"), and warnings are failures here.
    """
    out = apply(compose([*transforms_factory(), A.NoOp(p=1.0)], case.seed), case)
    assert out["image"].shape[:2] == (case.height, case.width), "a pixel-only transform resized the image"
    for k, (got, want) in enumerate(zip(out["masks"], case.box_masks, strict=True)):
        assert np.array_equal(got, want), f"mask {k} changed ({case.ident})"
    np.testing.assert_allclose(_boxes(out), case.boxes, rtol=0, atol=1e-4, err_msg="boxes moved")
    assert _ints(out["labels"]) == list(case.labels), "box labels changed"
    np.testing.assert_allclose(_kps(out), case.keypoints, rtol=0, atol=1e-4, err_msg="keypoints moved")


# ---------------------------------------------------------------- property 10
def check_empty_targets_pass(transform: A.BasicTransform, image: np.ndarray, seed: int, **extra: Any) -> None:
    """Empty box and keypoint lists go through a spatial transform and come out empty.

    extra carries the data some transforms require (Mosaic's mosaic_metadata, for one).
    """
    pipeline = compose([transform], seed)
    out = pipeline(image=image, mask=np.zeros(image.shape[:2], np.uint8), bboxes=[], labels=[], box_ids=[],
                   keypoints=[], kp_labels=[], **extra)
    assert len(out["bboxes"]) == 0 and len(out["labels"]) == 0 and len(out["box_ids"]) == 0
    assert len(out["keypoints"]) == 0 and len(out["kp_labels"]) == 0


# ---------------------------------------------------------------- property 11
def outputs_equal(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Names of the targets on which two pipeline outputs differ (bit-exact comparison)."""
    differ = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, list) and va and isinstance(va[0], np.ndarray):
            same = len(va) == len(vb) and all(np.array_equal(x, y) for x, y in zip(va, vb))
        elif isinstance(va, (np.ndarray, list, tuple)):
            same = np.array_equal(np.asarray(va), np.asarray(vb))
        else:
            same = va == vb
        if not same:
            differ.append(key)
    return differ


def check_seed_reproduces(case: Case, transforms_factory: Any) -> None:
    """Two Compose objects built with the same seed produce identical targets, call after call."""
    first = compose(transforms_factory(case.height, case.width), seed=case.seed)
    second = compose(transforms_factory(case.height, case.width), seed=case.seed)
    for call in range(3):
        differ = outputs_equal(apply(first, case), apply(second, case))
        assert not differ, f"seed {case.seed} call {call}: {differ} differ between equal-seeded pipelines"
