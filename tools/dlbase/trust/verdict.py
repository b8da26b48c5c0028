"""The trust decision, in one place: verified evidence in, one verdict out.

`dlbase trust` and `dlbase pull` ask one question of an image in a registry: does its
evidence meet the policy? :func:`decide` answers it. It reads and verifies every signature
and attestation once (:func:`dlbase.trust.evidence.check`: a bad signature, a wrong
subject or identity fails there), then runs each requirement evaluator of
:data:`EVALUATORS` once over the verified evidence. Every evaluator has one shape: it takes
the evidence and the policy and returns an :class:`Outcome` (the statements it weighed,
each with why it does not count, and the :class:`PolicyNotMet` to raise when the policy
asks for something they do not give). A requirement the policy does not make is never a
failure; its rows are still shown. How fresh a verification or a scan must be is each
evaluator's part (the policy's ``max_age``), not a separate pass.

The CLI prints a :class:`Verdict` (:meth:`Verdict.summary` is the ``--json`` document and
what the table is made from) and decides nothing itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from dlbase.core.errors import PolicyNotMet
from dlbase.registry.client import RegistryClient
from dlbase.trust import predicates, rebuilt, scans
from dlbase.trust.evidence import Evidence, Subject, check
from dlbase.trust.policy import PUBLISHER, TrustedKey, TrustPolicy, newest_first, reasons_against, scan_unmet, unmet


@dataclass(frozen=True)
class Outcome:
    """One requirement weighed: the statements it read (each a {predicate, signer, unmet}
    row, newest first) and, when the policy's requirement is not met, the error saying so."""

    requirement: str
    rows: list[dict] = field(default_factory=list)
    failure: PolicyNotMet | None = None


Evaluator = Callable[[Evidence, TrustPolicy], Outcome]


def _found(rows: list[dict], host_of: Callable[[dict], str | None], nothing: str) -> str:
    """What was found, for an unmet requirement's message: each row's host and why it does not count."""
    return "; ".join(f"{host_of(r['predicate']) or 'unlabelled'}: {', '.join(r['unmet'])}" for r in rows) or nothing


def verifications(evidence: Evidence, policy: TrustPolicy) -> Outcome:
    """Each verification (newest first, either predicate type, read through
    :func:`predicates.verification_view`) with why it does or does not count; unmet when
    the policy's GPU requirement (count, verifiers, architecture, driver, age) is not."""
    rows = newest_first(evidence.verifications())
    for row in rows:
        row["unmet"] = reasons_against(policy, row["predicate"], row["signer"])
    why = unmet(policy, rows)
    if not why:
        return Outcome("verification", rows)
    found = _found(rows, lambda p: (p.get("host") or {}).get("label"), "no verification attestation at all")
    return Outcome("verification", rows, PolicyNotMet(
        f"{evidence.subject.reference}: no verification meets the policy ({policy.describe()}): {why}; "
        f"found: {found}",
        hint="run `dlbase verify REF@DIGEST --attest --require-gpu --key VERIFIER.key` on a GPU "
             "host whose public key the policy lists under verifiers, or relax the policy"))


def scan(evidence: Evidence, policy: TrustPolicy) -> Outcome:
    """The newest scan by a publisher or scanner key (one row, or none), with why it does
    not meet the policy; unmet when the policy requires a scan (age, severity) it does not meet."""
    newest = scans.newest(evidence.scans())
    why = scan_unmet(policy, newest["predicate"] if newest else None)
    rows = [{**newest, "unmet": why}] if newest is not None else []
    if not why or policy.scan is None:
        return Outcome("scan", rows)
    return Outcome("scan", rows, PolicyNotMet(
        f"{evidence.subject.reference}: the scan requirement is not met ({policy.scan.describe()}): "
        f"{'; '.join(why)}",
        hint="scan the published image against a current database and attach it: `dlbase scan "
             f"{evidence.subject.reference} --attest --key KEY --db DIR` (a publisher or scanner "
             "key); fix or VEX the findings; or relax the policy"))


def provenance_commit(evidence: Evidence) -> str | None:
    """The commit the publisher's newest provenance names, if any."""
    provs = evidence.signed(predicates.PROVENANCE_TYPE)
    params = (((provs[-1]["statement"]["predicate"].get("buildDefinition") or {}).get("externalParameters") or {})
              if provs else {})
    return params.get("commit") if isinstance(params.get("commit"), str) else None


def rebuilds(evidence: Evidence, policy: TrustPolicy) -> Outcome:
    """Each rebuilt-identical statement (newest first) with why it does or does not count;
    unmet when the policy requires one and too few rebuilder keys vouch. The revision a
    statement names is compared with the publisher's provenance, when there is one."""
    commit = provenance_commit(evidence)
    rows = rebuilt.newest_first(evidence.rebuilds())
    for row in rows:
        row["unmet"] = rebuilt.reasons_against(row["predicate"], row["signer"], evidence.subject.digest, commit,
                                               policy.rebuilt)
    why = rebuilt.unmet(policy, rows)
    if not why or policy.rebuilt is None:
        return Outcome("rebuilt", rows)
    found = _found(rows, lambda p: p.get("host_label"), "no rebuilt-identical attestation at all")
    return Outcome("rebuilt", rows, PolicyNotMet(
        f"{evidence.subject.reference}: the rebuilt-identical requirement is not met "
        f"({policy.rebuilt.describe()}): {why}; found: {found}",
        hint="a second builder rebuilds it from its commit and attests: `dlbase rebuild-check "
             f"VARIANT --attest {evidence.subject.reference} --key REBUILDER.key` (a key the "
             "policy lists under rebuilders), or relax the policy"))


#: The requirements, in the order their failures are reported (the first unmet one is raised).
EVALUATORS: tuple[Evaluator, ...] = (verifications, scan, rebuilds)


@dataclass(frozen=True)
class Verdict:
    """What the verified evidence of one image is worth against one policy."""

    evidence: Evidence
    policy: TrustPolicy
    outcomes: tuple[Outcome, ...]

    @property
    def failures(self) -> list[PolicyNotMet]:
        return [o.failure for o in self.outcomes if o.failure is not None]

    @property
    def met(self) -> bool:
        return not self.failures

    def outcome(self, requirement: str) -> Outcome:
        return next(o for o in self.outcomes if o.requirement == requirement)

    def require(self) -> "Verdict":
        """This verdict when the policy is met; else the first unmet requirement's PolicyNotMet."""
        if self.failures:
            raise self.failures[0]
        return self

    def summary(self, ref: str, tag: str | None) -> dict:
        """The verdict as one JSON document (what `trust --json` prints, and the table reads)."""
        evidence, policy = self.evidence, self.policy
        vexes = evidence.signed(predicates.OPENVEX_TYPE)
        provs = evidence.signed(predicates.PROVENANCE_TYPE)
        boms = evidence.signed(predicates.SBOM_TYPE)
        prov = provs[-1]["statement"]["predicate"] if provs else {}
        params = (prov.get("buildDefinition") or {}).get("externalParameters") or {}
        internal = (prov.get("buildDefinition") or {}).get("internalParameters") or {}
        components = (boms[-1]["statement"]["predicate"].get("components") or []) if boms else []
        newest_scan = next(iter(self.outcome("scan").rows), None)
        return {
            "ok": self.met,
            "reference": ref,
            "tag": tag,
            "digest": evidence.subject.digest,
            "pinned": evidence.subject.reference,
            "signature": {"verified": True, **evidence.signature,
                          "keys": [k.fingerprint for k in policy.of_role(PUBLISHER)]},
            "built_from": {"commit": params.get("commit"), "repository": params.get("repository"),
                           "variant": params.get("variant"), "lock_hash": params.get("lockHash"),
                           "base": internal.get("baseImage"), "base_digest": internal.get("baseDigest"),
                           "finished": ((prov.get("runDetails") or {}).get("metadata") or {}).get("finishedOn"),
                           "signer": key_summary(provs[-1]["signer"])}
            if prov else None,
            "sbom": {"components": len(components),
                     "python": sum(1 for c in components if str(c.get("purl", "")).startswith("pkg:pypi/")),
                     "debian": sum(1 for c in components if str(c.get("purl", "")).startswith("pkg:deb/")),
                     "signer": key_summary(boms[-1]["signer"])}
            if boms else None,
            "attestations": [s["statement"]["predicateType"] for s in evidence.statements],
            "other_attestations": evidence.unknown_types(),
            "verifications": [{**verification_summary(r["predicate"]), "signer": key_summary(r["signer"]),
                               "meets_policy": not r["unmet"], "unmet": r["unmet"]}
                              for r in self.outcome("verification").rows],
            "scan": {**scan_summary(newest_scan["predicate"]), "signer": key_summary(newest_scan["signer"]),
                     "unmet": newest_scan["unmet"], "scans": len(evidence.scans())} if newest_scan else None,
            "rebuilds": [{**rebuild_summary(r["predicate"]), "signer": key_summary(r["signer"]),
                          "meets_policy": not r["unmet"], "unmet": r["unmet"]} for r in self.outcome("rebuilt").rows],
            "vex": {"statements": len(vexes[-1]["statement"]["predicate"].get("statements") or []),
                    "timestamp": vexes[-1]["statement"]["predicate"].get("timestamp"),
                    "signer": key_summary(vexes[-1]["signer"])} if vexes else None,
            "ignored": evidence.ignored,
            "policy": {"rules": policy.describe(), "file": policy.source, "met": self.met},
        }


def judge(evidence: Evidence, policy: TrustPolicy, evaluators: tuple[Evaluator, ...] = EVALUATORS) -> Verdict:
    """Each requirement evaluator, once, over evidence whose signatures are already verified."""
    return Verdict(evidence, policy, tuple(evaluate(evidence, policy) for evaluate in evaluators))


def decide(client: RegistryClient, subject: Subject, policy: TrustPolicy, *, tag: str | None = None) -> Verdict:
    """The trust check: every statement of ``subject`` verified once, then judged.

    Unsigned, BadSignature, WrongSubject and WrongIdentity are raised by the verification
    (there is no evidence to judge then); an unmet requirement is in the verdict
    (:meth:`Verdict.require` raises it)."""
    return judge(check(client, subject, policy, tag=tag), policy)


def key_summary(key: TrustedKey | None) -> dict | None:
    if key is None:
        return None
    return {"fingerprint": key.fingerprint, "label": key.label, "roles": [r for r, _l in key.roles]}


def scan_summary(view: dict) -> dict:
    return {"when": view["when"], "database": view["database"], "scanner": view["scanner"],
            "counts": view["counts"], "counts_without_vex": view["counts_without_vex"],
            "vex_applied": view["vex_applied"], "not_covered": view["not_covered"]}


def rebuild_summary(view: dict) -> dict:
    return {"host_label": view["host_label"], "when": view["when"], "revision": view["revision"],
            "variant": view["variant"], "rebuilt_digest": view["digest"],
            "source_date_epoch": view["source_date_epoch"], "builder": view["builder"],
            "debian_packages": view["debian_packages"]}


def verification_summary(pred: dict) -> dict:
    host = pred.get("host") or {}
    return {"host_label": host.get("label"), "result": pred.get("result"),
            "gpus": [f"{g.get('name')} ({g.get('sm')})" for g in host.get("gpus") or []],
            "driver": host.get("driver"), "cuda_driver": host.get("cudaDriverVersion"),
            "require_gpu": pred.get("requireGpu"), "partial": pred.get("partial"),
            "forced": pred.get("forced"), "simulated": pred.get("simulated"),
            "when": pred.get("verifiedAt") or pred.get("attestedAt"),
            "counts": pred.get("counts"), "failed_checks": pred.get("failedChecks"),
            "source": pred.get("source")}
