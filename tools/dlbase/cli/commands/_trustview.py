"""`dlbase trust` and `dlbase pull`: the registry clients for the check, and the verdict's one table.

The decision is :mod:`dlbase.trust.verdict`'s; this module only prints it."""

from __future__ import annotations

from dlbase.cli import ui
from dlbase.cli.commands.common import registry_client
from dlbase.registry.client import RegistryClient
from dlbase.trust import evidence as ev
from dlbase.trust import verdict
from dlbase.trust.policy import PUBLISHER, TrustPolicy


def check(ref: str, policy: TrustPolicy) -> dict:
    """Resolve ``ref`` once; the verdict of :func:`dlbase.trust.verdict.decide`, required met, as its summary."""
    clients: dict[str, RegistryClient] = {}

    def client_for(host: str) -> RegistryClient:
        if host not in clients:
            clients[host] = registry_client(host)
        return clients[host]

    subject, tag = ev.parse_subject(ref, client_for)
    # A signature must name the tag only when the digest came from it: NAME:TAG@DIGEST is
    # pinned by its digest (docker ignores such a tag too), so the digest is what was asked for.
    resolved_from = None if "@" in ref else tag
    return verdict.decide(client_for(subject.host), subject, policy, tag=resolved_from).require().summary(ref, tag)


def _counts(counts: dict | None) -> str:
    if counts is None:
        return "counts unknown (not a dlbase scan)"
    return ", ".join(f"{n} {level.lower()}" for level, n in counts.items() if n) or "no open findings"


#: How each signature format is named in the table.
FORMAT_WORDS = {"legacy": "cosign .sig tag", "bundle": "Sigstore bundle"}


def _by(signer: dict | None) -> str:
    """'key LABEL sha256:0123456789ab...' for the key that verified a row."""
    if not signer:
        return "no key"
    return f"{'/'.join(signer['roles'])} {signer['label']} {signer['fingerprint'][:19]}..."


def print_table(body: dict) -> None:
    sig = body["signature"]
    made_for = (f"signed for {sig['identity']}" if sig.get("identity")
                else "signed for the digest only (the bundle names no repository)")
    formats = " and ".join(FORMAT_WORDS.get(f, f) for f in sig.get("formats") or [])
    rows = [["signature", "ok", made_for + (f" tag {sig['tag']}" if sig.get("tag") else "")
             + f" (by {_by({'roles': [PUBLISHER], 'label': sig.get('key_label'), 'fingerprint': sig['key']})})"
             + (f"; formats: {formats}" if formats else "")]]
    b = body.get("built_from")
    rows.append(["built from", "ok" if b else "missing",
                 (f"commit {str(b['commit'])[:12]}, variant {b['variant']}, lock {b['lock_hash']}, "
                  f"base {b['base']}@{str(b['base_digest'])[:19]} (by {_by(b['signer'])})" if b
                  else "no provenance attestation by a publisher key")])
    s = body.get("sbom")
    rows.append(["SBOM", "ok" if s else "missing",
                 f"{s['components']} components ({s['python']} Python, {s['debian']} Debian) (by {_by(s['signer'])})"
                 if s else "no SBOM attestation by a publisher key"])
    if not body["verifications"]:
        rows.append(["verification", "missing", "no verification attestation"])
    for v in body["verifications"]:
        gpus = ", ".join(v["gpus"]) or "no GPU"
        extra = []
        if v.get("forced"):
            extra.append("FORCED")
        if v.get("simulated"):
            extra.append("SIMULATED")
        if v.get("partial"):
            extra.append("partial")
        if v["failed_checks"]:
            extra.append("failed: " + ", ".join(v["failed_checks"][:4]))
        if v["unmet"]:
            extra.append("policy: " + ", ".join(v["unmet"]))
        rows.append([f"verification: {v['host_label'] or 'unlabelled'}", v["result"],
                     f"{gpus}; driver {v['driver'] or '-'}; {v['when']}; by {_by(v['signer'])}"
                     + ("; " + "; ".join(extra) if extra else "")])
    scan = body.get("scan")
    if scan is None:
        rows.append(["scan", "missing", "no scan attestation by a publisher or scanner key"])
    else:
        vexed = f"; {scan['vex_applied']} answered by VEX" if scan.get("vex_applied") else ""
        extra = f"; policy: {', '.join(scan['unmet'])}" if scan["unmet"] else ""
        rows.append([f"scan (newest of {scan['scans']})", "ok" if not scan["unmet"] else "present",
                     f"{scan['when']}; database {scan['database']}; open: {_counts(scan['counts'])}{vexed}; "
                     f"by {_by(scan['signer'])}{extra}"])
    for r in body.get("rebuilds") or []:
        builder = ", ".join(f"{k} {r['builder'][k]}" for k in ("docker", "buildx", "buildkit") if r["builder"].get(k))
        rows.append([f"rebuilt identical: {r['host_label'] or 'unlabelled'}", "ok" if r["meets_policy"] else "present",
                     f"revision {str(r['revision'])[:12]}; {r['when']}; {builder or 'builder unknown'}; "
                     f"by {_by(r['signer'])}" + (f"; policy: {', '.join(r['unmet'])}" if r["unmet"] else "")])
    vex = body.get("vex")
    if vex is not None:
        rows.append(["VEX", "ok", f"{vex['statements']} statement(s), {vex['timestamp']} (by {_by(vex['signer'])})"])
    others = body.get("other_attestations") or []
    if others:
        rows.append(["other attestations", "present",
                     f"{len(others)} type(s) dlbase does not read: {', '.join(others)}"])
    for i in body["ignored"]:
        what = i["predicateType"] or i["kind"]
        rows.append([f"ignored {i['kind']}", "ignored",
                     f"{what}: {i['why']}" + (f"; key {i['fingerprint'][:19]}..." if i["fingerprint"] else "")])
    rows.append(["policy", "ok", body["policy"]["rules"]])
    ui.table(["evidence", "result", "details"], rows, title=f"dlbase trust {body['pinned']}", status_column="result")
