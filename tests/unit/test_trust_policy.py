"""The trust policy: roles, what counts as a GPU verification, and the policy file's
strict validation (every bad file: exit 2 naming FILE:LINE)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from dlbase.core.errors import ExitCode, InvalidInput, MatrixError, Missing
from dlbase.trust import keys, policyfile, predicates
from dlbase.trust.policy import (PUBLISHER, VERIFIER, GpuRequirement, TrustedKey, TrustPolicy, newest_first,
                                 reasons_against, unmet)

NOW = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)


def trusted(role: str, label: str) -> TrustedKey:
    public = keys.generate().public
    return TrustedKey(public=public, fingerprint=keys.fingerprint(public), roles=((role, label),), source="test")


PUB = trusted(PUBLISHER, "release")
H200 = trusted(VERIFIER, "h200-fleet")
A100 = trusted(VERIFIER, "a100-lab")


def run(result="passed", gpus=("sm_90",), driver="550.54.15", require_gpu=True, gpus_used=True, partial=False,
        when="2025-05-30T10:00:00+00:00", **extra) -> dict:
    """A verification predicate, the shape `verify --attest` writes."""
    return {"result": result, "partial": partial, "requireGpu": require_gpu, "gpusUsed": gpus_used,
            "verifiedAt": when, **extra,
            "host": {"label": "h", "driver": driver,
                     "gpus": [{"name": "H200", "sm": sm} for sm in gpus]}}


def policy(**gpu) -> TrustPolicy:
    return TrustPolicy(keys=(PUB, H200, A100), gpu=GpuRequirement(**gpu))


def test_without_a_gpu_requirement_only_the_outcome_matters():
    plain = TrustPolicy(keys=(PUB,))
    assert reasons_against(plain, run(gpus=()), PUB) == []
    assert reasons_against(plain, run(result="failed"), PUB) == ["did not pass"]
    assert unmet(plain, []) is None


def test_a_gpu_verification_counts_only_from_a_verifier_key():
    assert reasons_against(policy(), run(), H200, NOW) == []
    why = reasons_against(policy(), run(), PUB, NOW)
    assert why == [f"signed by publisher release ({PUB.fingerprint[:19]}...), not a verifier key of the policy"]
    both = TrustedKey(public=PUB.public, fingerprint=PUB.fingerprint,
                      roles=((PUBLISHER, "release"), (VERIFIER, "ci-gpu")), source="test")
    assert reasons_against(policy(), run(), both, NOW) == []  # listed as a verifier too: it counts
    assert "verifier a100-lab is not one of h200-fleet" in reasons_against(policy(verifiers=("h200-fleet",)), run(),
                                                                           A100, NOW)


def test_gpu_flags_need_gpu_checks_that_ran():
    """`verify --attest --no-gpus` on an sm_90 host: the host has the GPU, the run did not use it."""
    no_gpus = run(gpus_used=False)
    for req in ({}, {"arch": "sm_90"}, {"min_driver": "550"}):
        assert "the GPUs were not used (verify --no-gpus, or no GPU runtime)" in reasons_against(
            policy(**req), no_gpus, H200, NOW), req
    assert "GPU checks were not required (verify ran without --require-gpu)" in reasons_against(
        policy(arch="sm_90"), run(require_gpu=False), H200, NOW)
    assert reasons_against(policy(arch="sm_80"), run(), H200, NOW) == ["no sm_80 GPU (sm_90)"]
    assert reasons_against(policy(min_driver="560"), run(), H200, NOW) == ["driver 550.54.15 < 560"]
    assert reasons_against(policy(min_driver="550.54.14"), run(), H200, NOW) == []


def test_a_simulated_record_never_meets_a_policy():
    for pred in (run(simulated=True), run(note="simulated record: a test wrote it")):
        assert "a simulated (test-only) record" in reasons_against(TrustPolicy(keys=(PUB,)), pred, PUB)
        assert "a simulated (test-only) record" in reasons_against(policy(), pred, H200, NOW)


def test_max_age_and_newest_first():
    old = run(when="2025-04-01T00:00:00Z")
    assert reasons_against(policy(max_age=dt.timedelta(days=30)), old, H200, NOW) == ["older than 30d (2025-04-01)"]
    assert reasons_against(policy(max_age=dt.timedelta(days=30)), run(), H200, NOW) == []
    assert reasons_against(policy(max_age=dt.timedelta(days=30)), run(when=None), H200, NOW) == ["no verification time"]
    rows = newest_first([{"predicate": old}, {"predicate": run(when=None)}, {"predicate": run()}])
    assert [r["predicate"]["verifiedAt"] for r in rows] == ["2025-05-30T10:00:00+00:00", "2025-04-01T00:00:00Z", None]


def test_count_is_distinct_verifier_keys():
    rows = [{"predicate": run(), "signer": H200, "unmet": []}, {"predicate": run(), "signer": H200, "unmet": []}]
    assert unmet(policy(count=2), rows) == "1 of 2 required verifier key(s) vouch for it"
    assert unmet(policy(count=2), rows + [{"predicate": run(), "signer": A100, "unmet": []}]) is None
    assert unmet(TrustPolicy(keys=(PUB,), gpu=GpuRequirement()), []) == \
        "the policy names no verifier key, so no GPU verification can count"


def test_flags_add_requirements_and_empty_values_are_errors():
    base = TrustPolicy(keys=(PUB, H200))
    assert base.with_flags(require_gpu_verified=False, gpu_arch=None, min_driver=None).gpu is None
    assert base.with_flags(require_gpu_verified=True, gpu_arch=None, min_driver=None).gpu == GpuRequirement()
    strict = TrustPolicy(keys=(PUB, H200), gpu=GpuRequirement(min_driver="560"))
    assert strict.with_flags(require_gpu_verified=False, gpu_arch=None, min_driver="550").gpu.min_driver == "560"
    assert strict.with_flags(require_gpu_verified=False, gpu_arch=None, min_driver="570.1").gpu.min_driver == "570.1"
    for kwargs, needle in (({"min_driver": ""}, "--min-driver ''"), ({"gpu_arch": ""}, "--gpu-arch ''"),
                           ({"gpu_arch": "hopper"}, "not like sm_90"), ({"min_driver": "new"}, "driver version")):
        with pytest.raises(InvalidInput, match=needle):
            base.with_flags(require_gpu_verified=False, **{"gpu_arch": None, "min_driver": None, **kwargs})
    with pytest.raises(InvalidInput, match="contradicts"):
        TrustPolicy(keys=(PUB, H200), gpu=GpuRequirement(arch="sm_90")).with_flags(
            require_gpu_verified=False, gpu_arch="sm_80", min_driver=None)


def test_policy_arch_and_driver_follow_the_shared_gpu_rule():
    """sm_90a is a build target, not a GPU: it used to pass the check and then match no
    verification (exit 19 'no sm_90a GPU'); now exit 2 naming sm_90. A driver the predicate
    records in a form that is no version is a reason, not a crash or a silent 'old'."""
    base = TrustPolicy(keys=(PUB, H200))
    with pytest.raises(InvalidInput) as info:
        base.with_flags(require_gpu_verified=False, gpu_arch="sm_90a", min_driver=None)
    assert "build target" in info.value.message and "--gpu-arch sm_90" in info.value.hint
    with pytest.raises(InvalidInput, match="build target"):
        GpuRequirement(arch="sm_90a")
    with pytest.raises(InvalidInput):
        base.with_flags(require_gpu_verified=False, gpu_arch="compute_90", min_driver=None)
    assert reasons_against(policy(arch="sm_100"), run(gpus=("sm_100",)), H200, NOW) == []
    assert reasons_against(policy(min_driver="550"), run(driver="[N/A]"), H200, NOW) == \
        ["driver '[N/A]' is not a version"]
    assert reasons_against(policy(min_driver="535.104.05"), run(driver="535.104.05-1"), H200, NOW) == []


def _test_result(**facts) -> dict:
    """What `verify --attest` writes now: in-toto test-result, dlbase's facts in ``dlbase``."""
    return predicates.verification_predicate(
        passed=facts.pop("passed", True), verified_at="2025-05-30T10:00:00+00:00", counts={}, failed_checks=[],
        require_gpu=facts.pop("require_gpu", True), partial=False, gpus_used=facts.pop("gpus_used", True),
        suites={}, host={"label": "h", "driver": "550.54.15", "gpus": [{"name": "H200", "sm": "sm_90"}]},
        image="r/x", source="dlbase verify --attest", **facts)


def test_the_role_rules_apply_to_test_result_predicates():
    """requireGpu, gpusUsed and simulated are read through verification_view, so a
    test-result verification meets a GPU policy exactly when the old type would."""
    view = lambda pred: predicates.verification_view(predicates.VERIFICATION_TYPE, pred)  # noqa: E731
    assert reasons_against(policy(arch="sm_90"), view(_test_result()), H200, NOW) == []
    assert reasons_against(policy(), view(_test_result()), PUB, NOW) == \
        [f"signed by publisher release ({PUB.fingerprint[:19]}...), not a verifier key of the policy"]
    assert "the GPUs were not used (verify --no-gpus, or no GPU runtime)" in reasons_against(
        policy(arch="sm_90"), view(_test_result(gpus_used=False)), H200, NOW)
    assert "GPU checks were not required (verify ran without --require-gpu)" in reasons_against(
        policy(), view(_test_result(require_gpu=False)), H200, NOW)
    assert "a simulated (test-only) record" in reasons_against(policy(), view(_test_result(simulated=True)), H200, NOW)
    assert "a simulated (test-only) record" in reasons_against(TrustPolicy(keys=(PUB,)),
                                                               view(_test_result(simulated=True)), PUB)
    assert reasons_against(policy(), view(_test_result(passed=False)), H200, NOW)[0] == "did not pass"
    # cosign's own test-result (no dlbase facts): read, passes without a GPU policy, meets none
    foreign = view({"result": "pass", "configuration": [], "passedTests": ["unit"]})
    assert reasons_against(TrustPolicy(keys=(PUB,)), foreign, PUB) == []
    why = reasons_against(policy(), foreign, H200, NOW)
    assert "no GPU on that host" in why and "the GPUs were not used (verify --no-gpus, or no GPU runtime)" in why


# ------------------------------------------------------------------------------------ the file


@pytest.fixture(scope="module")
def pubs(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("pubs")
    for name in ("release", "h200", "a100"):
        (base / f"{name}.pub").write_bytes(keys.public_pem(keys.generate()))
    return base


GOOD = """\
publishers:
  - label: release
    key: release.pub
verifiers:
  - label: h200-fleet
    key: h200.pub
  - label: a100-lab
    key: |
{inline}
require:
  gpu:
    count: 2
    arch: sm_90
    min_driver: "550.54.14"
    max_age: 30d
  repositories:
    - registry.example.org/dlbase/pytorch
"""


def write(pubs: Path, text: str, name: str = "policy.yaml") -> Path:
    path = pubs / name
    path.write_text(text)
    return path


def test_a_policy_file_loads(pubs):
    inline = "\n".join("      " + line for line in (pubs / "a100.pub").read_text().splitlines())
    pol = policyfile.load(write(pubs, GOOD.format(inline=inline)))
    assert [k.label for k in pol.of_role(PUBLISHER)] == ["release"]
    assert [k.label for k in pol.of_role(VERIFIER)] == ["h200-fleet", "a100-lab"]
    assert pol.of_role(VERIFIER)[1].fingerprint == keys.fingerprint(keys.load_public(str(pubs / "a100.pub")))
    assert pol.gpu == GpuRequirement(count=2, arch="sm_90", min_driver="550.54.14", max_age=dt.timedelta(days=30))
    assert pol.repositories == ("registry.example.org/dlbase/pytorch",) and pol.signed_tag is True
    assert pol.source.endswith("policy.yaml")


TWO_VERIFIERS = ("publishers:\n  - key: release.pub\nverifiers:\n  - label: a\n    key: h200.pub\n"
                 "  - label: b\n    key: a100.pub\n")
TWO_REBUILDERS = TWO_VERIFIERS.replace("verifiers:", "rebuilders:")

BAD = [
    ("publisher:\n  - key: release.pub\n", 1, "unknown key 'publisher'"),
    ("verifiers:\n  - label: x\n    key: h200.pub\n", None, "missing required 'publishers'"),
    ("publishers: release.pub\n", 1, "publishers must be a non-empty list"),
    ("publishers:\n  - key: release.pub\n    role: admin\n", 3, "unknown key 'role'"),
    ("publishers:\n  - key: release.pub\nverifiers:\n  - key: h200.pub\n", 4, "a verifier needs a label"),
    ("publishers:\n  - key: nothere.pub\n", 2, "does not exist"),
    ("publishers:\n  - key: bad.yaml\n", 2, "is not a PEM public key"),
    ("publishers:\n  - key: release.pub\nrequire:\n  gpu:\n    arch: sm_90\n", 4, "require.gpu needs verifier keys"),
    ("publishers:\n  - key: release.pub\nverifiers:\n  - label: h\n    key: h200.pub\nrequire:\n  gpu:\n"
     "    min_driver: 550.54\n", 8, "must be a quoted string"),
    ("publishers:\n  - key: release.pub\nverifiers:\n  - label: h\n    key: h200.pub\nrequire:\n  gpu:\n"
     "    count: 2\n", 8, "count 2 is more than the 1 verifier key(s)"),
    ("publishers:\n  - key: release.pub\nverifiers:\n  - label: h\n    key: h200.pub\nrequire:\n  gpu:\n"
     "    verifiers: [g]\n", 8, "verifier 'g' is not a label under verifiers"),
    ("publishers:\n  - key: release.pub\nverifiers:\n  - label: h\n    key: h200.pub\nrequire:\n  gpu:\n"
     "    max_age: a month\n", 8, "is not like 12h"),
    ("publishers:\n  - key: release.pub\nverifiers:\n  - label: h\n    key: h200.pub\nrequire:\n  gpu:\n"
     "    count: true\n", 8, "count must be a whole number"),
    ("publishers:\n  - key: release.pub\nrequire:\n  repositories: [pytorch]\n", 4, "names no registry host"),
    ("publishers:\n  - key: release.pub\nrequire:\n  signed_tag: 'no'\n", 4, "signed_tag must be true or false"),
    ("publishers:\n  - key: release.pub\nverifiers:\n  - label: a\n    key: h200.pub\n  - label: b\n"
     "    key: h200.pub\n", 3, "verifiers a and b are the same key"),
    ("publishers:\n  - key: release.pub\n   bad: indent\n", 3, "YAML syntax error"),
    (TWO_VERIFIERS + "require:\n  gpu:\n    count: 2\n    verifiers: [a, a]\n", 11,
     "require.gpu: verifiers names 'a' twice"),
    (TWO_VERIFIERS + "require:\n  gpu:\n    count: 2\n    verifiers: [a]\n", 10,
     "require.gpu: count 2 is more than the 1 verifier key(s)"),
    (TWO_REBUILDERS + "require:\n  rebuilt_identical:\n    count: 2\n    rebuilders: [a, a]\n", 11,
     "require.rebuilt_identical: rebuilders names 'a' twice"),
    ('publishers:\n  - key: release.pub\nverifiers:\n  - label: "h\\n"\n    key: h200.pub\n', 4,
     "label 'h\\n' must be letters"),
    ('publishers:\n  - label: "r\\n"\n    key: release.pub\n', 2, "label 'r\\n' must be letters"),
    ('publishers:\n  - key: release.pub\nverifiers:\n  - label: h\n    key: h200.pub\nrequire:\n  gpu:\n'
     '    max_age: "30d\\n"\n', 8, "is not like 12h"),
    ('publishers:\n  - key: release.pub\nverifiers:\n  - label: h\n    key: h200.pub\nrequire:\n  gpu:\n'
     '    min_driver: "550.54\\n"\n', 8, "min_driver"),
]


@pytest.mark.parametrize("text,line,needle", BAD, ids=[b[2] for b in BAD])
def test_a_bad_policy_file_names_file_and_line(pubs, text, line, needle):
    with pytest.raises(MatrixError) as info:
        policyfile.load(write(pubs, text, "bad.yaml"))
    err = info.value
    assert err.exit_code == ExitCode.INVALID_INPUT
    assert needle in err.message, err.message
    assert err.message.startswith(str(pubs / "bad.yaml")), err.message  # the file, always
    if line is not None:
        assert err.message.startswith(f"{pubs / 'bad.yaml'}:{line}"), err.message


def test_a_missing_policy_file_and_cli_keys(pubs):
    with pytest.raises(Missing, match="does not exist"):
        policyfile.load(pubs / "absent.yaml")
    with pytest.raises(InvalidInput, match="no publisher key given"):
        policyfile.from_cli(None, (), (), require_gpu_verified=False, gpu_arch=None, min_driver=None)
    with pytest.raises(InvalidInput, match="is not LABEL=PUB"):
        policyfile.from_cli(None, (str(pubs / "release.pub"),), (str(pubs / "h200.pub"),),
                            require_gpu_verified=False, gpu_arch=None, min_driver=None)
    pol = policyfile.from_cli(None, (str(pubs / "release.pub"),), (f"h200={pubs / 'h200.pub'}",),
                              require_gpu_verified=True, gpu_arch="sm_90", min_driver=None)
    assert [k.label_for(VERIFIER) for k in pol.of_role(VERIFIER)] == ["h200"]
    assert pol.gpu == GpuRequirement(arch="sm_90")
