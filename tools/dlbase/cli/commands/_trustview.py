"""The check behind `dlbase trust` and `dlbase pull`, and its one table."""

from __future__ import annotations

from dlbase.cli import ui
from dlbase.cli.commands.common import registry_client
from dlbase.registry.client import RegistryClient
from dlbase.trust import evidence as ev
from dlbase.trust import keys, predicates
from dlbase.trust.policy import Policy


def check(ref: str, publics: list, policy: Policy) -> dict:
    """Resolve ``ref`` once, verify every piece of evidence, apply the policy; the summary."""
    clients: dict[str, RegistryClient] = {}

    def client_for(host: str) -> RegistryClient:
        if host not in clients:
            clients[host] = registry_client(host)
        return clients[host]

    subject, tag = ev.parse_subject(ref, client_for)
    evidence = ev.check(client_for(subject.host), subject, publics, tag=tag)
    verifications = ev.enforce(evidence, policy)
    prov = (evidence.of_type(predicates.PROVENANCE_TYPE) or [{}])[-1]
    params = (prov.get("buildDefinition") or {}).get("externalParameters") or {}
    internal = (prov.get("buildDefinition") or {}).get("internalParameters") or {}
    boms = evidence.of_type(predicates.SBOM_TYPE)
    components = (boms[-1].get("components") or []) if boms else []
    return {
        "ok": True,
        "reference": ref,
        "tag": tag,
        "digest": subject.digest,
        "pinned": subject.reference,
        "signature": {"verified": True, **evidence.signature,
                      "keys": [keys.fingerprint(k) for k in publics]},
        "built_from": {"commit": params.get("commit"), "repository": params.get("repository"),
                       "variant": params.get("variant"), "lock_hash": params.get("lockHash"),
                       "base": internal.get("baseImage"), "base_digest": internal.get("baseDigest"),
                       "finished": ((prov.get("runDetails") or {}).get("metadata") or {}).get("finishedOn")}
        if prov else None,
        "sbom": {"components": len(components),
                 "python": sum(1 for c in components if str(c.get("purl", "")).startswith("pkg:pypi/")),
                 "debian": sum(1 for c in components if str(c.get("purl", "")).startswith("pkg:deb/"))}
        if boms else None,
        "attestations": [s["predicateType"] for s in evidence.statements],
        "other_attestations": evidence.unknown_types(),
        "verifications": [{**_verification_summary(r["predicate"]), "meets_policy": not r["unmet"],
                           "unmet": r["unmet"]} for r in verifications],
        "policy": {"rules": policy.describe(), "met": True},
    }


def _verification_summary(pred: dict) -> dict:
    host = pred.get("host") or {}
    return {"host_label": host.get("label"), "result": pred.get("result"),
            "gpus": [f"{g.get('name')} ({g.get('sm')})" for g in host.get("gpus") or []],
            "driver": host.get("driver"), "cuda_driver": host.get("cudaDriverVersion"),
            "require_gpu": pred.get("requireGpu"), "partial": pred.get("partial"),
            "forced": pred.get("forced"), "when": pred.get("verifiedAt") or pred.get("attestedAt"),
            "counts": pred.get("counts"), "failed_checks": pred.get("failedChecks"),
            "source": pred.get("source")}


def print_table(body: dict) -> None:
    rows = [["signature", "ok", f"signed for {body['signature'].get('identity')} "
                                f"(key {body['signature']['keys'][0][:19]}...)"]]
    b = body.get("built_from")
    rows.append(["built from", "ok" if b else "missing",
                 (f"commit {str(b['commit'])[:12]}, variant {b['variant']}, lock {b['lock_hash']}, "
                  f"base {b['base']}@{str(b['base_digest'])[:19]}" if b else "no provenance attestation")])
    s = body.get("sbom")
    rows.append(["SBOM", "ok" if s else "missing",
                 f"{s['components']} components ({s['python']} Python, {s['debian']} Debian)" if s
                 else "no SBOM attestation"])
    if not body["verifications"]:
        rows.append(["verification", "missing", "no verification attestation"])
    for v in body["verifications"]:
        gpus = ", ".join(v["gpus"]) or "no GPU"
        extra = []
        if v.get("forced"):
            extra.append("FORCED")
        if v.get("partial"):
            extra.append("partial")
        if v["failed_checks"]:
            extra.append("failed: " + ", ".join(v["failed_checks"][:4]))
        if v["unmet"]:
            extra.append("policy: " + ", ".join(v["unmet"]))
        rows.append([f"verification: {v['host_label'] or 'unlabelled'}", v["result"],
                     f"{gpus}; driver {v['driver'] or '-'}; {v['when']}" + ("; " + "; ".join(extra) if extra else "")])
    others = body.get("other_attestations") or []
    if others:
        rows.append(["other attestations", "present",
                     f"{len(others)} type(s) dlbase does not read: {', '.join(others)}"])
    rows.append(["policy", "ok", body["policy"]["rules"]])
    ui.table(["evidence", "result", "details"], rows, title=f"dlbase trust {body['pinned']}", status_column="result")
