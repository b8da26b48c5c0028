"""A short DistributedDataParallel run, launched by torchrun from test_ddp.py.

Checks, on every rank: an all_reduce gives the expected sum, parameters are bit-identical on
all ranks after every optimiser step, and the (globally averaged) loss falls. Rank 0 writes a
JSON summary to the path given as argv[2]; any failed check exits non-zero.

usage: torchrun --standalone --nproc_per_node=N ddp_train.py {gloo|nccl} RESULT.json
"""
from __future__ import annotations

import json
import os
import sys

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

STEPS = 30


def main(backend: str, result_path: str) -> int:
    dist.init_process_group(backend=backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if backend == "nccl":
        local = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")

    total = torch.tensor([float(rank + 1)], device=device)
    dist.all_reduce(total)
    expected = world * (world + 1) / 2
    assert total.item() == expected, f"rank {rank}: all_reduce gave {total.item()}, expected {expected}"

    torch.manual_seed(0)  # same initial weights everywhere (DDP also broadcasts rank 0's)
    model = DDP(torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).to(device),
                device_ids=[device.index] if device.type == "cuda" else None)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.1)
    gen = torch.Generator().manual_seed(100 + rank)  # each rank sees its own shard of the data
    x = torch.randn(64, 8, generator=gen).to(device)
    y = (x @ torch.linspace(-1, 1, 8, device=device)).unsqueeze(1)

    losses = []
    for step in range(STEPS):
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimiser.step()
        mean_loss = loss.detach().clone()
        dist.all_reduce(mean_loss)
        losses.append(mean_loss.item() / world)
        flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        gathered = [torch.empty_like(flat) for _ in range(world)]
        dist.all_gather(gathered, flat)
        for other, params in enumerate(gathered):
            assert torch.equal(params, flat), f"step {step}: rank {rank} and rank {other} parameters differ"

    assert losses[-1] < 0.5 * losses[0], f"loss did not fall: {losses[0]:.4f} -> {losses[-1]:.4f}"
    if rank == 0:
        with open(result_path, "w", encoding="utf-8") as fh:
            json.dump({"backend": backend, "world_size": world, "all_reduce": total.item(), "losses": losses}, fh)
    dist.barrier()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
