"""The consumer's policy over an image's verified verification results.

Only attestations whose signature and subject were already checked reach this module;
it decides whether any of them meets what the person pulling asks for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dlbase.core import gpu
from dlbase.core.errors import InvalidInput


@dataclass(frozen=True)
class Policy:
    require_gpu_verified: bool = False
    gpu_arch: str | None = None  # "sm_90"
    min_driver: str | None = None  # "550.54.14"

    def __post_init__(self) -> None:
        if self.gpu_arch:
            parsed = gpu.arch(self.gpu_arch)
            if parsed is None or parsed.kind != "sm":
                raise InvalidInput(f"--gpu-arch {self.gpu_arch!r} is not like sm_90",
                                   hint="use sm_XX (compute capability X.X), e.g. sm_90 for an H100")
            if parsed.suffix:
                raise InvalidInput(f"--gpu-arch {self.gpu_arch!r} names a build target, not a GPU: a GPU "
                                   f"reports its compute capability, {gpu.sm_name((parsed.major, parsed.minor))}",
                                   hint=f"use --gpu-arch {gpu.sm_name((parsed.major, parsed.minor))}")
        if self.min_driver and not re.fullmatch(r"\d+(\.\d+)*", self.min_driver):
            raise InvalidInput(f"--min-driver {self.min_driver!r} is not a driver version like 550.54.14")

    @property
    def active(self) -> bool:
        return bool(self.require_gpu_verified or self.gpu_arch or self.min_driver)

    def describe(self) -> str:
        parts = []
        if self.require_gpu_verified:
            parts.append("a passing verification on a GPU host")
        if self.gpu_arch:
            parts.append(f"on a {self.gpu_arch} GPU")
        if self.min_driver:
            parts.append(f"with driver >= {self.min_driver}")
        return " ".join(parts) if parts else "none"


def reasons_against(policy: Policy, predicate: dict) -> list[str]:
    """Why one verification predicate does not meet the policy ([] = it does)."""
    why = []
    if predicate.get("result") != "passed":
        why.append("did not pass")
    if predicate.get("partial"):
        why.append("partial run")
    host = predicate.get("host") or {}
    gpus = host.get("gpus") or []
    if policy.require_gpu_verified or policy.gpu_arch:
        if not gpus:
            why.append("no GPU on that host")
        elif policy.require_gpu_verified and not (predicate.get("requireGpu") and predicate.get("gpusUsed")):
            why.append("GPU checks were not required")
    if policy.gpu_arch and gpus and not any(g.get("sm") == policy.gpu_arch for g in gpus):
        why.append(f"no {policy.gpu_arch} GPU ({', '.join(str(g.get('sm')) for g in gpus)})")
    if policy.min_driver:
        driver = host.get("driver")
        if not driver:
            why.append("no driver")
        else:
            enough = gpu.at_least(str(driver), policy.min_driver)
            if enough is None:
                why.append(f"driver {driver!r} is not a version")
            elif not enough:
                why.append(f"driver {driver} < {policy.min_driver}")
    return why
