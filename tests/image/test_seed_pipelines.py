"""The seed document's pipelines run and keep boxes and labels in step."""
from __future__ import annotations

import albumentations as A
import numpy as np
import pytest
import torch

import seed_pipelines as S
from aug_properties import mask_box


def sample(seed: int, height: int, width: int, n_boxes: int) -> dict:
    """An image with coco boxes (the seed's [100, 100, 50, 50] among them) and one mask per box."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    boxes = [[100.0, 100.0, 50.0, 50.0]]
    for _ in range(n_boxes - 1):
        bw, bh = int(rng.integers(12, width // 3)), int(rng.integers(12, height // 3))
        boxes.append([float(rng.integers(0, width - bw + 1)), float(rng.integers(0, height - bh + 1)), float(bw), float(bh)])
    boxes.append([0.0, float(height - 20), 30.0, 20.0])  # touches left and bottom
    masks = []
    for x, y, w, h in boxes:
        m = np.zeros((height, width), np.uint8)
        m[int(y):int(y + h), int(x):int(x + w)] = 1
        masks.append(m)
    return {"image": image, "bboxes": boxes, "class_labels": list(range(10, 10 + len(boxes))), "masks": masks}


SAMPLES = [(seed, h, w) for seed in (0, 1, 2) for (h, w) in ((480, 640), (361, 517), (300, 300))]


def assert_boxes_follow_masks(out: dict, data: dict, tol_px: float = 2.0) -> None:
    """Each surviving coco box sits on its own mask (labels were chosen as 10 + box index).

    2 px, not the 1 px of a single transform: the seed pipeline resamples the mask twice with
    OpenCV's (uncentred) nearest neighbour, Resize(640) then the crop's resize to 416.
    """
    assert len(out["bboxes"]) == len(out["class_labels"])
    for (x, y, w, h), label in zip(out["bboxes"], out["class_labels"], strict=True):
        k = int(label) - 10
        mask = out["masks"][k]
        mask = mask.numpy() if isinstance(mask, torch.Tensor) else mask
        mb = mask_box(mask)
        assert mb is not None and np.abs(np.array([x, y, x + w, y + h]) - mb).max() <= tol_px, (
            f"box labelled {label} at {[x, y, x + w, y + h]} is not on its object {mb}")


@pytest.mark.parametrize("params", SAMPLES, ids=lambda p: f"seed{p[0]}-{p[1]}x{p[2]}")
def test_seed_detection_pipeline_keeps_boxes_and_labels_in_step(params: tuple[int, int, int]) -> None:
    seed, h, w = params
    data = sample(seed, h, w, n_boxes=4)
    pipeline = S.detection_pipeline(seed=seed)
    sizes = set()
    for _ in range(6):
        out = pipeline(**data)
        assert isinstance(out["image"], torch.Tensor) and out["image"].dtype == torch.float32
        assert out["image"].shape[0] == 3
        sizes.add(tuple(out["image"].shape[1:]))
        assert_boxes_follow_masks(out, data)
    assert sizes <= {(640, 640), (416, 416)}


def test_seed_detection_pipeline_emits_two_image_sizes() -> None:
    """RandomSizedBBoxSafeCrop(416, p=0.5) after Resize(640): batches mix 640 and 416 images, so
    a collate must pad or the pipeline needs a final fixed-size step."""
    data = sample(0, 480, 640, n_boxes=3)
    pipeline = S.detection_pipeline(seed=0)
    sizes = {tuple(pipeline(**data)["image"].shape[1:]) for _ in range(20)}
    assert sizes == {(640, 640), (416, 416)}


@pytest.mark.parametrize("params", SAMPLES, ids=lambda p: f"seed{p[0]}-{p[1]}x{p[2]}")
def test_seed_validation_pipeline_is_deterministic_and_keeps_every_box(params: tuple[int, int, int]) -> None:
    seed, h, w = params
    data = sample(seed, h, w, n_boxes=4)
    first, second = S.validation_pipeline()(**data), S.validation_pipeline()(**data)
    assert torch.equal(first["image"], second["image"]) and np.array_equal(np.asarray(first["bboxes"]), np.asarray(second["bboxes"]))
    assert len(first["bboxes"]) == len(data["bboxes"]) and first["class_labels"] == data["class_labels"]
    sx, sy = 640 / w, 640 / h
    want = np.array([[x * sx, y * sy, bw * sx, bh * sy] for x, y, bw, bh in data["bboxes"]])
    np.testing.assert_allclose(np.asarray(first["bboxes"]), want, atol=1e-3)


def test_custom_clahe_image_only_transform_runs_in_the_detection_pipeline() -> None:
    data = sample(1, 361, 517, n_boxes=4)
    out = S.detection_pipeline(seed=1, extra=[S.AdaptiveCLAHE(p=1.0)])(**data)
    assert_boxes_follow_masks(out, data)
    clahe_only = A.Compose([S.AdaptiveCLAHE(p=1.0), A.NoOp()], bbox_params=S.coco_params(), strict=True)(**data)
    assert not np.array_equal(clahe_only["image"], data["image"]), "CLAHE left the image unchanged"
    np.testing.assert_allclose(np.asarray(clahe_only["bboxes"]), np.asarray(data["bboxes"]), atol=1e-3)
    assert clahe_only["class_labels"] == data["class_labels"]


def test_seed_strong_pipeline_names_which_transforms_are_missing_and_their_replacements(
        record_property: pytest.RecordProperty) -> None:
    """Pins the facts for the installed release and records the substitutions in the report."""
    strong = S.strong_pipeline(seed=0)
    v = S.ALBUMENTATIONS_VERSION
    for name, present in (("Cutout", S.has_cutout(v)), ("MixUp", S.has_mixup(v)), ("Mosaic", S.has_mosaic(v))):
        assert hasattr(A, name) == present, f"A.{name} {'missing' if present else 'present'} contradicts the facts"
    expected_missing = [n for n, f in (("Mosaic", S.has_mosaic), ("MixUp", S.has_mixup), ("Cutout", S.has_cutout))
                        if not f(v)]
    assert strong.missing == expected_missing
    if v[:2] == (2, 0) and v >= (2, 0, 6):
        assert strong.missing == ["MixUp", "Cutout"], strong.report()
    record_property("strong_pipeline", strong.report())
    print(strong.report())


def test_seed_strong_pipeline_as_written_cannot_be_built() -> None:
    """No release has Mosaic, MixUp and Cutout together, so the seed's literal code must fail."""
    with pytest.raises(AttributeError):
        S.build_strong_pipeline_as_written()


def test_seed_strong_pipeline_with_replacements_keeps_boxes_and_labels_in_step() -> None:
    strong = S.strong_pipeline(seed=3)
    main = sample(0, 480, 640, n_boxes=3)
    others = [sample(s, 400, 400, n_boxes=2) for s in (5, 6, 7)]
    extra = {}
    if "Mosaic" not in strong.missing:
        extra["mosaic_metadata"] = [{"image": o["image"], "bboxes": o["bboxes"], "class_labels": [90 + i] * len(o["bboxes"])}
                                    for i, o in enumerate(others)]
    seen_labels: set = set()
    for _ in range(8):
        out = strong.compose(image=main["image"], bboxes=main["bboxes"], class_labels=main["class_labels"], **extra)
        assert len(out["bboxes"]) == len(out["class_labels"])
        h, w = out["image"].shape[:2]
        for x, y, bw, bh in out["bboxes"]:
            assert 0 <= x and 0 <= y and x + bw <= w + 1e-3 and y + bh <= h + 1e-3 and bw > 0 and bh > 0
        seen_labels |= {int(v) for v in out["class_labels"]}
    assert seen_labels <= set(main["class_labels"]) | {90, 91, 92}


def test_removed_or_misspelled_argument_is_a_failure_not_a_silent_warning() -> None:
    """albumentations 2.x warns and ignores unknown arguments (Cutout's max_h_size on CoarseDropout);
    this suite's pytest.ini turns those warnings into errors, and strict=True raises outright."""
    with pytest.raises(UserWarning, match="not valid"):
        A.CoarseDropout(max_h_size=32, max_w_size=32)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dropout = A.CoarseDropout(max_h_size=32, max_w_size=32)
    with pytest.raises(ValueError, match="not valid"):
        A.Compose([dropout], strict=True)
