"""The consumer's trust policy: who may vouch for what, and what is required.

Roles, as sigstore's policy-controller authorities and in-toto's functionaries separate
them:

- publisher keys sign the image and the build's attestations (SBOM, provenance, the
  verification that let the image through the push gate);
- verifier keys, each with a label (a GPU host or a fleet), attest verification results
  and nothing else;
- scanner keys, each with a label (a CI job that re-scans published images), attest
  vulnerability scans and nothing else. Publisher keys may attest scans too (push does);
  verifier keys may not: a GPU host's key vouches for what ran on that host, and a key
  that only a scan job holds keeps a leaked scan key from forging GPU results;
- rebuilder keys, each with a label (a second builder, another organisation's CI), attest
  that they rebuilt the image from its commit and got the same digest (the
  rebuilt-identical predicate) and nothing else. Only a rebuilder's statement meets a
  ``rebuilt_identical`` requirement: the publisher saying its own build is reproducible
  proves nothing a second builder's does.

A consumer always requires a publisher signature of the digest, made for the repository
being checked (or a mirror the policy allows) and, when checking by tag, naming that tag.
Optionally: GPU verifications (how many distinct verifier keys, which of them, GPU
architecture, minimum driver, maximum age), and a scan: the newest one by a publisher
or scanner key at most so old, with no finding that VEX does not answer at or above a
severity; and rebuilt-identical statements by rebuilder keys (how many distinct keys, which
of them). A GPU verification counts only when a
verifier key of the policy signed it: the publisher's "GPU passed" counts only if the
policy also lists that key as a verifier.

Pure data and decisions: keys arrive already loaded (:mod:`policyfile` reads the file),
and only statements whose signatures were checked reach :func:`reasons_against`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace

from dlbase.core import durations
from dlbase.core import gpu as gpu_rules
from dlbase.core.errors import InvalidInput
from dlbase.vuln import severity
from dlbase.vuln.db import parse_time

DRIVER_RE = re.compile(r"^\d+(\.\d+)*\Z")
LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}\Z")
AGE_RE = re.compile(r"^(\d+)([hdw])\Z")
PUBLISHER, VERIFIER, SCANNER, REBUILDER = "publisher", "verifier", "scanner", "rebuilder"


@dataclass(frozen=True)
class TrustedKey:
    """One public key of the policy, with the role(s) it holds there and its label in each."""

    public: object  # an ECDSA P-256 public key (cryptography)
    fingerprint: str  # keys.fingerprint: sha256 of the DER public key
    roles: tuple[tuple[str, str], ...]  # (role, label) pairs, e.g. (("verifier", "h200-fleet"),)
    source: str  # where it came from: a path, "FILE:LINE (inline)", "--key"

    def has(self, role: str) -> bool:
        return any(r == role for r, _label in self.roles)

    def label_for(self, role: str) -> str | None:
        return next((label for r, label in self.roles if r == role), None)

    @property
    def label(self) -> str:
        return "/".join(dict.fromkeys(label for _r, label in self.roles))

    def describe(self) -> str:
        return f"{'/'.join(r for r, _l in self.roles)} {self.label} ({self.fingerprint[:19]}...)"


@dataclass(frozen=True)
class GpuRequirement:
    """What a verification must show to count, and how many distinct verifier keys must
    have signed one (a threshold, like in-toto's: one key signing twice counts once)."""

    count: int = 1
    verifiers: tuple[str, ...] = ()  # labels; empty: any verifier of the policy
    arch: str | None = None  # "sm_90"
    min_driver: str | None = None  # "550.54.14"
    max_age: dt.timedelta | None = None

    def __post_init__(self) -> None:
        check_arch(self.arch, "arch")
        check_driver(self.min_driver, "min_driver")
        if self.count < 1:
            raise InvalidInput(f"a GPU requirement's count must be at least 1, not {self.count}")

    def describe(self) -> str:
        parts = [f"{self.count} passing GPU verification(s) by distinct verifier keys"
                 if self.count > 1 else "a passing GPU verification by a verifier key"]
        if self.verifiers:
            parts.append(f"({', '.join(self.verifiers)})")
        if self.arch:
            parts.append(f"on a {self.arch} GPU")
        if self.min_driver:
            parts.append(f"with driver >= {self.min_driver}")
        if self.max_age:
            parts.append(f"at most {format_age(self.max_age)} old")
        return " ".join(parts)


@dataclass(frozen=True)
class ScanRequirement:
    """What the newest scan (by a publisher or scanner key) must show."""

    max_age: dt.timedelta | None = None
    fail_on: str | None = None  # a severity.LEVELS name: no open finding at or above it

    def __post_init__(self) -> None:
        check_severity(self.fail_on, "fail_on")

    def describe(self) -> str:
        parts = ["a scan by a publisher or scanner key"]
        if self.max_age:
            parts.append(f"at most {format_age(self.max_age)} old")
        if self.fail_on:
            parts.append(f"with no finding VEX does not answer at or above {self.fail_on}")
        return " ".join(parts)

    def stricter(self, max_age: dt.timedelta | None, fail_on: str | None) -> "ScanRequirement":
        """This requirement with the flags on top: the shorter age, the lower severity."""
        ages = [a for a in (self.max_age, max_age) if a is not None]
        levels = [lv for lv in (self.fail_on, fail_on) if lv is not None]
        return ScanRequirement(max_age=min(ages) if ages else None,
                               fail_on=min(levels, key=severity.rank) if levels else None)


@dataclass(frozen=True)
class RebuildRequirement:
    """How many distinct rebuilder keys (a threshold, as for GPU verifications) must have
    said "rebuilt from the commit, same digest", and which of them may count."""

    count: int = 1
    rebuilders: tuple[str, ...] = ()  # labels; empty: any rebuilder of the policy

    def __post_init__(self) -> None:
        if self.count < 1:
            raise InvalidInput(f"a rebuilt_identical requirement's count must be at least 1, not {self.count}")

    def describe(self) -> str:
        who = f" ({', '.join(self.rebuilders)})" if self.rebuilders else ""
        if self.count > 1:
            return f"{self.count} rebuilt-identical statements by distinct rebuilder keys{who}"
        return f"a rebuilt-identical statement by a rebuilder key{who}"


def check_severity(value: str | None, what: str) -> None:
    if value is not None and value not in severity.LEVELS:
        raise InvalidInput(f"{what} {value!r} is not a severity ({', '.join(severity.LEVELS)})",
                           hint="e.g. HIGH: no finding at HIGH or CRITICAL that VEX does not answer")


@dataclass(frozen=True)
class TrustPolicy:
    keys: tuple[TrustedKey, ...]
    gpu: GpuRequirement | None = None
    scan: ScanRequirement | None = None
    rebuilt: RebuildRequirement | None = None
    repositories: tuple[str, ...] = ()  # what a signature may name besides the checked repository
    signed_tag: bool = True  # checking REF:TAG needs a publisher signature naming TAG
    source: str | None = None  # the policy file, when there is one

    def of_role(self, role: str) -> list[TrustedKey]:
        return [k for k in self.keys if k.has(role)]

    def by_fingerprint(self, fingerprint: str | None) -> TrustedKey | None:
        return next((k for k in self.keys if k.fingerprint == fingerprint), None)

    def describe(self) -> str:
        parts = [f"a publisher signature ({len(self.of_role(PUBLISHER))} key(s))"]
        if self.repositories:
            parts.append(f"made for the checked repository or {', '.join(self.repositories)}")
        if self.gpu:
            parts.append(self.gpu.describe())
        if self.scan:
            parts.append(self.scan.describe())
        if self.rebuilt:
            parts.append(self.rebuilt.describe())
        return "; ".join(parts)

    def with_keys(self, extra: list[TrustedKey]) -> "TrustPolicy":
        """The policy with more keys (a key already there gains the new roles)."""
        merged = {k.fingerprint: k for k in self.keys}
        for key in extra:
            have = merged.get(key.fingerprint)
            if have is None:
                merged[key.fingerprint] = key
            else:
                merged[key.fingerprint] = replace(have, roles=have.roles + tuple(r for r in key.roles
                                                                                if not have.has(r[0])))
        return replace(self, keys=tuple(merged.values()))

    def with_flags(self, *, require_gpu_verified: bool, gpu_arch: str | None,
                   min_driver: str | None, max_scan_age: str | None = None,
                   scan_fail_on: str | None = None, require_rebuilt: bool = False) -> "TrustPolicy":
        """The command-line flags on top of the file: they add requirements, never relax one."""
        check_arch(gpu_arch, "--gpu-arch")
        check_driver(min_driver, "--min-driver")
        fail_on = scan_fail_on.upper() if scan_fail_on is not None else None
        check_severity(fail_on, "--scan-fail-on")
        age = parse_age(max_scan_age, "--max-scan-age") if max_scan_age is not None else None
        policy = self
        if age is not None or fail_on is not None:
            policy = replace(self, scan=(self.scan or ScanRequirement()).stricter(age, fail_on))
        if require_rebuilt and policy.rebuilt is None:
            policy = replace(policy, rebuilt=RebuildRequirement())
        return policy._with_gpu_flags(require_gpu_verified, gpu_arch, min_driver)

    def _with_gpu_flags(self, require_gpu_verified: bool, gpu_arch: str | None,
                        min_driver: str | None) -> "TrustPolicy":
        if not (require_gpu_verified or gpu_arch is not None or min_driver is not None):
            return self
        gpu = self.gpu or GpuRequirement()
        if gpu_arch is not None and gpu.arch not in (None, gpu_arch):
            raise InvalidInput(f"--gpu-arch {gpu_arch} contradicts the policy's arch {gpu.arch}",
                               hint="one verification cannot be on two architectures; drop the flag or edit the policy")
        driver = gpu.min_driver
        if min_driver is not None and (driver is None or not gpu_rules.at_least(driver, min_driver)):
            driver = min_driver
        return replace(self, gpu=replace(gpu, arch=gpu_arch or gpu.arch, min_driver=driver))


def check_arch(value: str | None, what: str) -> None:
    """A GPU's own arch (sm_XX, as core.gpu reads arch names); a build target such as
    sm_90a is refused: a GPU reports its compute capability, never a suffix."""
    if value is None:
        return
    parsed = gpu_rules.arch(value)
    if parsed is None or parsed.kind != "sm":
        raise InvalidInput(f"{what} {value!r} is not like sm_90",
                           hint="use sm_XX (compute capability X.X), e.g. sm_90 for an H100")
    if parsed.suffix:
        plain = gpu_rules.sm_name((parsed.major, parsed.minor))
        raise InvalidInput(f"{what} {value!r} names a build target, not a GPU: a GPU reports its compute "
                           f"capability, {plain}", hint=f"use {what} {plain}")


def check_driver(value: str | None, what: str) -> None:
    """An empty value is an error, never "no requirement": a script's unset variable
    (`--min-driver "$MIN"`) must not switch a check off."""
    if value is not None and not DRIVER_RE.match(value):
        raise InvalidInput(f"{what} {value!r} is not a driver version like 550.54.14",
                           hint="give the NVIDIA driver version (nvidia-smi shows it), or leave the option out")


def parse_age(text: str, what: str = "max_age") -> dt.timedelta:
    match = AGE_RE.match(text)
    if not match or not match.group(1).strip("0"):
        raise InvalidInput(f"{what} {text[:40]!r} is not like 12h, 30d or 2w")
    return durations.age(match.group(1), match.group(2), text, what)


def format_age(age: dt.timedelta) -> str:
    hours = int(age.total_seconds() // 3600)
    return f"{hours // 24}d" if hours % 24 == 0 else f"{hours}h"


def _when(predicate: dict) -> dt.datetime | None:
    return parse_time(predicate.get("verifiedAt") or predicate.get("attestedAt"))


def newest_first(rows: list[dict]) -> list[dict]:
    """Verification rows (each with a ``predicate``) newest first; undated ones last."""
    oldest = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return sorted(rows, key=lambda r: _when(r["predicate"]) or oldest, reverse=True)


def is_simulated(predicate: dict) -> bool:
    """A record a test wrote by hand; older dlbase said so only in the note."""
    return bool(predicate.get("simulated")) or str(predicate.get("note") or "").startswith("simulated record")


def reasons_against(policy: TrustPolicy, predicate: dict, signer: TrustedKey | None = None,
                    now: dt.datetime | None = None) -> list[str]:
    """Why one verification (signed by ``signer``) does not count ([] = it does)."""
    why = []
    if predicate.get("result") != "passed":
        why.append("did not pass")
    if predicate.get("partial"):
        why.append("partial run")
    if is_simulated(predicate):
        why.append("a simulated (test-only) record")
    gpu = policy.gpu
    if gpu is None:
        return why
    if signer is None or not signer.has(VERIFIER):
        who = signer.describe() if signer else "an unknown key"
        why.append(f"signed by {who}, not a verifier key of the policy")
    elif gpu.verifiers and signer.label_for(VERIFIER) not in gpu.verifiers:
        why.append(f"verifier {signer.label_for(VERIFIER)} is not one of {', '.join(gpu.verifiers)}")
    host = predicate.get("host") or {}
    gpus = host.get("gpus") or []
    if not gpus:
        why.append("no GPU on that host")
    if not predicate.get("requireGpu"):
        why.append("GPU checks were not required (verify ran without --require-gpu)")
    if not predicate.get("gpusUsed"):
        why.append("the GPUs were not used (verify --no-gpus, or no GPU runtime)")
    if gpu.arch and gpus and not any(g.get("sm") == gpu.arch for g in gpus):
        why.append(f"no {gpu.arch} GPU ({', '.join(str(g.get('sm')) for g in gpus)})")
    if gpu.min_driver:
        driver = host.get("driver")
        if not driver:
            why.append("no driver")
        else:
            enough = gpu_rules.at_least(str(driver), gpu.min_driver)
            if enough is None:
                why.append(f"driver {driver!r} is not a version")
            elif not enough:
                why.append(f"driver {driver} < {gpu.min_driver}")
    if gpu.max_age:
        when = _when(predicate)
        now = now or dt.datetime.now(dt.timezone.utc)
        if when is None:
            why.append("no verification time")
        elif now - when > gpu.max_age:
            why.append(f"older than {format_age(gpu.max_age)} ({when.date().isoformat()})")
    return why


def unmet(policy: TrustPolicy, rows: list[dict]) -> str | None:
    """Whether the GPU requirement is met by the rows that count; why not, if it is not."""
    gpu = policy.gpu
    if gpu is None:
        return None
    vouching = {r["signer"].fingerprint for r in rows if not r["unmet"] and r.get("signer") is not None}
    if len(vouching) >= gpu.count:
        return None
    if not policy.of_role(VERIFIER):
        return "the policy names no verifier key, so no GPU verification can count"
    return f"{len(vouching)} of {gpu.count} required verifier key(s) vouch for it"



def scan_unmet(policy: TrustPolicy, newest: dict | None, now: dt.datetime | None = None) -> list[str]:
    """Why the newest scan (a :func:`dlbase.trust.scans.view`, None: no scan by a key that
    may attest one) does not meet the policy's scan requirement ([] = it does)."""
    req = policy.scan
    if req is None:
        return []
    if newest is None:
        return ["no scan attestation by a publisher or scanner key of the policy"]
    why = []
    when = parse_time(newest.get("when"))
    if req.max_age:
        now = now or dt.datetime.now(dt.timezone.utc)
        if when is None:
            why.append("the newest scan has no time")
        elif now - when > req.max_age:
            why.append(f"the newest scan ({when.isoformat(timespec='seconds')}) is older than "
                       f"{format_age(req.max_age)}")
    if req.fail_on:
        counts = newest.get("counts")
        if not isinstance(counts, dict):
            why.append("the newest scan's result has no counts dlbase can read (not a dlbase scan)")
        else:
            over = {lv: int(n) for lv, n in counts.items()
                    if lv in severity.LEVELS and severity.rank(lv) >= severity.rank(req.fail_on) and n}
            if over:
                ids = [f["id"] for f in newest.get("findings") or []
                       if f.get("severity") in severity.LEVELS
                       and severity.rank(f["severity"]) >= severity.rank(req.fail_on)]
                why.append(f"the newest scan has {sum(over.values())} finding(s) VEX does not answer at or above "
                           f"{req.fail_on} ({', '.join(ids[:6]) or ', '.join(f'{n} {lv}' for lv, n in over.items())})")
        if newest.get("could_not_evaluate"):
            why.append(f"the newest scan could not evaluate {newest['could_not_evaluate']} advisory record(s): "
                       "it cannot say those packages are not affected")
    return why
