"""The GPU stack works: every visible GPU computes correctly, and torch has kernels for it."""
from __future__ import annotations

import pytest

pytestmark = pytest.mark.gpu


def test_cuda_is_available() -> None:
    import torch

    assert torch.cuda.is_available() and torch.cuda.device_count() >= 1


def test_every_visible_gpu_runs_a_matmul_that_matches_the_cpu() -> None:
    import torch

    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(256, 128, generator=gen, dtype=torch.float64), torch.randn(128, 64, generator=gen, dtype=torch.float64)
    want = a @ b
    for index in range(torch.cuda.device_count()):
        got = (a.to(f"cuda:{index}") @ b.to(f"cuda:{index}")).cpu()
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10,
                                   msg=lambda m, i=index: f"GPU {i} ({torch.cuda.get_device_name(i)}): {m}")


def test_gpu_compute_capability_is_in_torch_arch_list() -> None:
    """sm_XY (native kernels) or compute_XY (PTX that the driver JIT-compiles) both run; anything
    else means torch has no kernels for this GPU."""
    import torch

    arch = set(torch.cuda.get_arch_list())
    for index in range(torch.cuda.device_count()):
        major, minor = torch.cuda.get_device_capability(index)
        ok = {f"sm_{major}{minor}", f"compute_{major}{minor}"} & arch
        assert ok, f"GPU {index} is sm_{major}{minor}; torch was built for {sorted(arch)}"


def test_cudnn_convolution_matches_the_cpu() -> None:
    import torch

    assert torch.backends.cudnn.is_available() and torch.backends.cudnn.enabled
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 32, 33, generator=gen)
    conv = torch.nn.Conv2d(3, 8, kernel_size=3, padding=1)
    want = conv(x)
    torch.backends.cudnn.allow_tf32 = False  # compare full fp32 results
    got = conv.cuda()(x.cuda()).cpu()
    torch.testing.assert_close(got, want.detach(), rtol=1e-4, atol=1e-4)
