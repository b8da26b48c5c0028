"""The trust decision: each statement verified once, each requirement weighed once, one verdict.

The registry's artifact store is replaced by the layers it would return (the signing and
the verification are the real ones: real keys, real simple-signing and DSSE envelopes);
the real registry path is covered by tests/integration/test_trust_push.py.
"""

from __future__ import annotations

import pytest

from dlbase.core.errors import PolicyNotMet
from dlbase.trust import evidence, keys, predicates, referrers, simplesign, statements, store, verdict
from dlbase.trust.policy import PUBLISHER, RebuildRequirement, TrustedKey, TrustPolicy

DIGEST = "sha256:" + "cd" * 32
SUBJECT = evidence.Subject("registry.example", "team/dl", DIGEST)
PAIR = keys.generate()
PUB = TrustedKey(public=PAIR.public, fingerprint=keys.fingerprint(PAIR.public), roles=((PUBLISHER, "release"),),
                 source="test")
PREDICATE_TYPES = (predicates.SBOM_TYPE, predicates.PROVENANCE_TYPE, "https://example.com/other/v1")


def _layers() -> tuple[list[store.Layer], list[store.Layer]]:
    blob, annotations = simplesign.sign(PAIR, simplesign.payload(SUBJECT.name, DIGEST))
    sigs = [store.Layer(blob, simplesign.MEDIA_TYPE, annotations, where="sig[0]")]
    atts = [store.Layer(statements.envelope(PAIR, statements.statement(SUBJECT.name, DIGEST, ptype, {})),
                        statements.MEDIA_TYPE, {store.PREDICATE_ANNOTATION: ptype}, where=f"att[{i}]")
            for i, ptype in enumerate(PREDICATE_TYPES)]
    return sigs, atts


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    sigs, atts = _layers()

    class Layers:
        def __init__(self, _client: object, _repository: str, **_kw: object) -> None:
            pass

        def signatures(self, _digest: str) -> list[store.Layer]:
            return sigs

        def attestations(self, _digest: str) -> list[store.Layer]:
            return atts

    monkeypatch.setattr(store, "ArtifactStore", Layers)
    monkeypatch.setattr(referrers, "find", lambda *_a: referrers.Found())  # no bundles: the legacy tags only


@pytest.fixture
def verifications(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every signature check made (the data each was over)."""
    made: list[bytes] = []
    real = keys.verify

    def counting(public: object, signature: bytes, data: bytes) -> bool:
        made.append(data)
        return real(public, signature, data)

    monkeypatch.setattr(keys, "verify", counting)
    return made


def test_each_signature_and_attestation_is_verified_once(registry: None, verifications: list[bytes]) -> None:
    found = verdict.decide(None, SUBJECT, TrustPolicy(keys=(PUB,)))  # type: ignore[arg-type]
    assert found.met
    assert [s["statement"]["predicateType"] for s in found.evidence.statements] == list(PREDICATE_TYPES)
    assert len(verifications) == 1 + len(PREDICATE_TYPES), "a statement's signature was checked more than once"
    assert len(set(verifications)) == len(verifications)


def test_each_requirement_is_weighed_once_and_the_first_unmet_is_raised(registry: None) -> None:
    calls: list[str] = []

    def evaluator(name: str, fails: bool) -> verdict.Evaluator:
        def weigh(found: evidence.Evidence, _policy: TrustPolicy) -> verdict.Outcome:
            calls.append(name)
            assert found.subject == SUBJECT  # handed the verified evidence
            return verdict.Outcome(name, [], PolicyNotMet(f"{name} not met") if fails else None)
        return weigh

    checked = evidence.check(None, SUBJECT, TrustPolicy(keys=(PUB,)))  # type: ignore[arg-type]
    found = verdict.judge(checked, TrustPolicy(keys=(PUB,)),
                          (evaluator("a", False), evaluator("b", True), evaluator("c", True)))
    assert calls == ["a", "b", "c"]
    assert not found.met and [str(f) for f in found.failures] == ["b not met", "c not met"]
    with pytest.raises(PolicyNotMet, match="b not met"):
        found.require()


def test_a_required_rebuild_that_is_missing_is_the_verdicts_failure(registry: None) -> None:
    policy = TrustPolicy(keys=(PUB,), rebuilt=RebuildRequirement())
    found = verdict.decide(None, SUBJECT, policy)  # type: ignore[arg-type]
    assert [o.requirement for o in found.outcomes] == ["verification", "scan", "rebuilt"]
    assert not found.met and found.outcome("rebuilt").failure is not None
    assert "rebuilt-identical requirement is not met" in str(found.outcome("rebuilt").failure)
    with pytest.raises(PolicyNotMet, match="rebuilt-identical"):
        found.require()
    assert verdict.decide(None, SUBJECT, TrustPolicy(keys=(PUB,))).summary("r", None)["ok"] is True  # type: ignore[arg-type]
