"""torchvision's C++ operators run against the installed torch.

Why: torchvision >= 0.29 no longer pins torch, so an index resolves torch 2.15 with
torchvision 0.29 without a word. Such a pair imports fine and fails at the first C++
operator ("operator torchvision::nms does not exist"); only calling one catches it.
"""
from __future__ import annotations


def test_nms_keeps_the_best_box_of_each_overlapping_cluster() -> None:
    import torch
    import torchvision

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [51, 50, 61, 60]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    keep = torchvision.ops.nms(boxes, scores, iou_threshold=0.5)
    assert keep.tolist() == [3, 0], f"nms kept {keep.tolist()}"


def test_roi_align_is_a_registered_operator_of_this_torch() -> None:
    import torch
    import torchvision

    assert hasattr(torch.ops.torchvision, "roi_align"), "torchvision registered no C++ operators with this torch"
    feature = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    out = torchvision.ops.roi_align(feature, [torch.tensor([[0.0, 0.0, 4.0, 4.0]])], output_size=(2, 2),
                                    spatial_scale=1.0, sampling_ratio=1, aligned=False)
    assert out.shape == (1, 1, 2, 2)
    assert out.flatten().tolist() == [5.0, 7.0, 13.0, 15.0]  # one bilinear sample at each 2x2 bin centre
