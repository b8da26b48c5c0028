"""Reading a trust policy file (YAML) and the command-line keys into a :class:`TrustPolicy`.

Validated strictly, like the matrix: an unknown key or a wrong type is almost always a
typo that would silently weaken the check (``verifier:`` for ``verifiers:`` would drop
every GPU requirement's signer), so it stops with ``FILE:LINE`` and exit 2.

The format (every key but ``publishers`` optional)::

    publishers:                 # they sign the image and the build's attestations
      - label: release-ci       # optional; shown in the table
        key: keys/release.pub   # a path (relative to this file), env://NAME, or inline PEM
    verifiers:                  # they attest verification results, nothing else
      - label: h200-fleet       # required, unique
        key: |
          -----BEGIN PUBLIC KEY-----
          ...
          -----END PUBLIC KEY-----
    scanners:                   # they attest vulnerability scans, nothing else
      - label: nightly-rescan   # required, unique
        key: keys/rescan.pub
    rebuilders:                 # they attest "rebuilt from the commit, same digest", nothing else
      - label: second-builder   # required, unique
        key: keys/rebuilder.pub
    require:
      gpu:                      # GPU verifications by verifier keys
        count: 1                # distinct verifier keys that must vouch
        verifiers: [h200-fleet] # only these labels count (default: any verifier)
        arch: sm_90
        min_driver: "550.54.14"
        max_age: 30d            # h / d / w
      repositories:             # a signature may also name these (the origin of a mirror)
        - registry.example.org/dlbase/pytorch
      signed_tag: true          # REF:TAG needs a publisher signature naming TAG (default)
      scan:                     # the newest scan by a publisher or scanner key
        max_age: 7d             # h / d / w
        fail_on: HIGH           # no finding VEX does not answer at or above this severity
      rebuilt_identical: true   # a rebuilder key vouches that it rebuilt the same digest; or:
      # rebuilt_identical: {count: 2, rebuilders: [second-builder, other-org]}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dlbase.core import fileerrors
from dlbase.core import kinds
from dlbase.core import validate, yamlio
from dlbase.core.errors import AddressError, DlbaseError, InvalidInput, MatrixError, Missing
from dlbase.trust import keys
from dlbase.trust.policy import (LABEL_RE, PUBLISHER, REBUILDER, SCANNER, VERIFIER, GpuRequirement,
                                 RebuildRequirement, ScanRequirement, TrustedKey, TrustPolicy, parse_age)
from dlbase.vuln import severity

TOP_KEYS = {"publishers", "verifiers", "scanners", "rebuilders", "require"}
KEY_KEYS = {"label", "key"}
REQUIRE_KEYS = {"gpu", "repositories", "signed_tag", "scan", "rebuilt_identical"}
REBUILT_KEYS = {"count", "rebuilders"}
GPU_KEYS = {"count", "verifiers", "arch", "min_driver", "max_age"}
SCAN_KEYS = {"max_age", "fail_on"}
#: (role, section of the file); every role but the publisher's needs a label per key.
SECTIONS = ((PUBLISHER, "publishers"), (VERIFIER, "verifiers"), (SCANNER, "scanners"), (REBUILDER, "rebuilders"))
#: What a key of each labelled role stands for (in the error when its label is missing).
STANDS_FOR = {VERIFIER: "the GPU host or fleet", SCANNER: "the scan job", REBUILDER: "the second builder"}
PEM_START = "-----BEGIN"
HINT = "fix the trust policy file (docs/trust-researchers.md shows the format)"


class _File:
    """Errors that name this file and the line of the offending node."""

    def __init__(self, path: Path):
        self.path, self.name = path, str(path)

    def error(self, message: str, node: Any = None, key: Any = None, field: str | None = None) -> MatrixError:
        return MatrixError(self.name, message, field=field, lineno=yamlio.lineno_of(node, key), hint=HINT)

    def mapping(self, node: Any, allowed: set[str], what: str, parent: Any = None, key: Any = None) -> dict:
        if not isinstance(node, dict):
            raise self.error(f"{what} must be a mapping, not {kinds.kind_of(node)}", parent, key,
                             field=None if key is None else str(key))
        for k in node:
            if k not in allowed:
                raise self.error(f"unknown key '{k}' in {what} (allowed: {', '.join(sorted(allowed))})", node, k,
                                 field=str(k))
        return node

    def string(self, node: dict, key: str, what: str) -> str:
        value = node[key]
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{what}: {key} must be a non-empty string, not {value!r}", node, key, field=key)
        return value

    def strings(self, node: dict, key: str, what: str) -> list[str]:
        value = node[key]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise self.error(f"{what}: {key} must be a non-empty list of strings", node, key, field=key)
        return list(value)


def load(path: Path) -> TrustPolicy:
    """The policy in ``path``; MatrixError (exit 2, FILE:LINE) on any problem, Missing if absent."""
    if not fileerrors.is_file(path, what="trust policy"):
        raise Missing(f"trust policy {path} does not exist", hint="give the path of the policy YAML file")
    f = _File(path)
    data = yamlio.load(path, f.name)
    top = f.mapping(data, TOP_KEYS, "the trust policy")
    if "publishers" not in top:
        raise f.error("missing required 'publishers' (the keys that sign the image)", top, field="publishers")
    trusted: list[TrustedKey] = []
    labels: dict[str, set[str]] = {role: set() for role, _section in SECTIONS}
    for role, section in SECTIONS:
        entries = top.get(section)
        if section not in top:
            continue
        if not isinstance(entries, list) or not entries:
            raise f.error(f"{section} must be a non-empty list of {{label, key}} entries", top, section, field=section)
        for i, entry in enumerate(entries):
            what = f"{section}[{i}]"
            node = f.mapping(entry, KEY_KEYS, what, entries)
            if "key" not in node:
                raise f.error(f"{what}: missing 'key' (a .pub path, env://NAME or inline PEM)", node, field="key")
            if role != PUBLISHER and "label" not in node:
                raise f.error(f"{what}: a {role} needs a label ({STANDS_FOR[role]} it stands for)", node,
                              field="label")
            label = f.string(node, "label", what) if "label" in node else f"publisher-{i + 1}"
            if not LABEL_RE.match(label):
                raise f.error(f"{what}: label {label!r} must be letters, digits, '.', '_' or '-'", node, "label",
                              field="label")
            if label in labels[role]:
                raise f.error(f"{what}: label {label!r} is used twice among the {section}", node, "label",
                              field="label")
            labels[role].add(label)
            line = yamlio.lineno_of(node, "key")
            try:
                trusted.append(_key(f.string(node, "key", what), label, role, path.parent,
                                    f"{f.name}:{line}" if line else f.name))
            except DlbaseError as exc:
                if isinstance(exc, MatrixError):
                    raise
                raise f.error(f"{what}: {exc.message}", node, "key", field="key") from None
    policy = TrustPolicy(keys=()).with_keys(trusted)
    _no_key_twice_in_one_role(f, top, trusted)
    req = top.get("require")
    if req is None:
        return TrustPolicy(keys=policy.keys, source=f.name)
    req = f.mapping(req, REQUIRE_KEYS, "require", top, "require")
    gpu = _gpu(f, req, labels[VERIFIER]) if "gpu" in req else None
    repositories: tuple[str, ...] = ()
    if "repositories" in req:
        repositories = tuple(f.strings(req, "repositories", "require"))
        for repo in repositories:
            _check_repository(f, req, repo)
    signed_tag = True
    if "signed_tag" in req:
        if not isinstance(req["signed_tag"], bool):
            raise f.error(f"require: signed_tag must be true or false, not {req['signed_tag']!r}", req,
                          "signed_tag", field="signed_tag")
        signed_tag = req["signed_tag"]
    scan = _scan(f, req) if "scan" in req else None
    rebuilt = _rebuilt(f, req, labels[REBUILDER]) if "rebuilt_identical" in req else None
    return TrustPolicy(keys=policy.keys, gpu=gpu, scan=scan, rebuilt=rebuilt, repositories=repositories,
                       signed_tag=signed_tag, source=f.name)


def _rebuilt(f: _File, req: dict, rebuilder_labels: set[str]) -> RebuildRequirement | None:
    """``rebuilt_identical: true`` (one rebuilder key, any), ``false`` (none), or
    ``{count: N, rebuilders: [LABEL, ...]}``."""
    value = req["rebuilt_identical"]
    if value is False:
        return None
    if value is not True and not isinstance(value, dict):
        raise f.error(f"require: rebuilt_identical must be true, false or a mapping (count, rebuilders), not "
                      f"{value!r}", req, "rebuilt_identical", field="rebuilt_identical")
    if not rebuilder_labels:
        raise f.error("require.rebuilt_identical needs rebuilder keys: only a rebuilder's statement counts",
                      req, "rebuilt_identical", field="rebuilt_identical")
    if value is True:
        return RebuildRequirement()
    node = f.mapping(value, REBUILT_KEYS, "require.rebuilt_identical", req, "rebuilt_identical")
    count = node.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise f.error(f"require.rebuilt_identical: count must be a whole number >= 1, not {count!r}", node, "count",
                      field="count")
    names = _who_may_vouch(f, node, "rebuilders", "require.rebuilt_identical", count, rebuilder_labels)
    return RebuildRequirement(count=count, rebuilders=names)


def _who_may_vouch(f: _File, node: dict, key: str, what: str, count: int, labels: set[str]) -> tuple[str, ...]:
    """The labels a requirement restricts to (``verifiers:`` / ``rebuilders:``), checked so
    the requirement can be met: each a label of that role, none named twice (``[a, a]`` is
    one key, and a ``count: 2`` over it could never be met), and ``count`` no more than the
    distinct keys that could vouch."""
    role = key[:-1]
    names = tuple(f.strings(node, key, what)) if key in node else ()
    for i, name in enumerate(names):
        if name not in labels:
            raise f.error(f"{what}: {role} {name!r} is not a label under {key} ({', '.join(sorted(labels))})",
                          node, key, field=key)
        if name in names[:i]:
            raise f.error(f"{what}: {key} names {name!r} twice (each label is one key; name each once)",
                          node, key, field=key)
    if count > len(names or labels):
        raise f.error(f"{what}: count {count} is more than the {len(names or labels)} {role} key(s) that could vouch",
                      node, "count", field="count")
    return names


def _scan(f: _File, req: dict) -> ScanRequirement:
    node = f.mapping(req["scan"], SCAN_KEYS, "require.scan", req, "scan")
    if not node:
        raise f.error("require.scan needs max_age and/or fail_on (an empty requirement checks nothing)", req, "scan",
                      field="scan")
    max_age = None
    if "max_age" in node:
        value = node["max_age"]
        try:
            max_age = parse_age(value) if isinstance(value, str) else parse_age(repr(value))
        except InvalidInput as exc:
            raise f.error(f"require.scan: {exc.message}", node, "max_age", field="max_age") from None
    fail_on = None
    if "fail_on" in node:
        value = node["fail_on"]
        fail_on = value.upper() if isinstance(value, str) else None
        if fail_on not in severity.LEVELS:
            raise f.error(f"require.scan: fail_on {value!r} is not a severity ({', '.join(severity.LEVELS)})",
                          node, "fail_on", field="fail_on")
    return ScanRequirement(max_age=max_age, fail_on=fail_on)


def _no_key_twice_in_one_role(f: _File, top: dict, trusted: list[TrustedKey]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for key in trusted:
        for role, label in key.roles:
            other = seen.setdefault((role, key.fingerprint), label)
            if other != label:
                raise f.error(f"{role}s {other} and {label} are the same key ({key.fingerprint[:19]}...)",
                              top, f"{role}s", field=f"{role}s")


def _gpu(f: _File, req: dict, verifier_labels: set[str]) -> GpuRequirement:
    node = f.mapping(req["gpu"], GPU_KEYS, "require.gpu", req, "gpu")
    if not verifier_labels:
        raise f.error("require.gpu needs verifier keys: only a verifier's signature makes a GPU verification count",
                      req, "gpu", field="gpu")
    count = node.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise f.error(f"require.gpu: count must be a whole number >= 1, not {count!r}", node, "count", field="count")
    names = _who_may_vouch(f, node, "verifiers", "require.gpu", count, verifier_labels)
    values = {}
    for key in ("arch", "min_driver", "max_age"):
        if key in node:
            value = node[key]
            if not isinstance(value, str):
                raise f.error(f"require.gpu: {key} must be a quoted string, not {value!r}"
                              + (" (YAML reads 550.54 as a number)" if isinstance(value, (int, float)) else ""),
                              node, key, field=key)
            values[key] = value
    try:
        return GpuRequirement(count=count, verifiers=names, arch=values.get("arch"),
                              min_driver=values.get("min_driver"),
                              max_age=parse_age(values["max_age"]) if "max_age" in values else None)
    except InvalidInput as exc:
        bad = next((k for k in ("max_age", "arch", "min_driver") if k in values and k in exc.message), None)
        raise f.error(f"require.gpu: {exc.message}", node, bad, field=bad) from None


def _check_repository(f: _File, req: dict, repo: str) -> None:
    host, _, path = repo.partition("/")
    try:
        if not path:
            raise AddressError(f"{repo!r} names no registry host and repository (like registry.example.org/team/repo)")
        validate.repository(path, where="require.repositories")
    except AddressError as exc:
        raise f.error(f"require: {exc.message}", req, "repositories", field="repositories") from None
    if ":" in path or "@" in path:
        raise f.error(f"require: repository {repo!r} must not carry a tag or digest", req, "repositories",
                      field="repositories")


def _key(value: str, label: str, role: str, base: Path, where: str) -> TrustedKey:
    """One key entry: inline PEM, env://NAME, or a path relative to the policy file."""
    if value.lstrip().startswith(PEM_START):
        public = keys.public_from_pem(value.encode(), f"{where} (inline key)")
        source = f"{where} (inline)"
    else:
        source = value if value.startswith(keys.ENV_PREFIX) or Path(value).is_absolute() else str(base / value)
        public = keys.load_public(source)
    return TrustedKey(public=public, fingerprint=keys.fingerprint(public), roles=((role, label),), source=source)


def from_cli(policy_file: Path | None, key_sources: tuple[str, ...], verifier_specs: tuple[str, ...], *,
             require_gpu_verified: bool, gpu_arch: str | None, min_driver: str | None,
             scanner_specs: tuple[str, ...] = (), max_scan_age: str | None = None,
             scan_fail_on: str | None = None, rebuilder_specs: tuple[str, ...] = (),
             require_rebuilt: bool = False) -> TrustPolicy:
    """``--policy FILE``, ``--key PUB`` (a publisher key), ``--verifier LABEL=PUB``,
    ``--scanner LABEL=PUB``, ``--rebuilder LABEL=PUB`` and the GPU, scan and rebuild flags
    (they add requirements on top of the file's)."""
    if policy_file is None and not key_sources:
        raise InvalidInput("no publisher key given",
                           hint="pass --key cosign.pub (repeat it for several keys) or --policy FILE")
    policy = load(policy_file) if policy_file is not None else TrustPolicy(keys=())
    extra = []
    for i, source in enumerate(key_sources):
        public = keys.load_public(source)
        extra.append(TrustedKey(public=public, fingerprint=keys.fingerprint(public),
                                roles=((PUBLISHER, f"key-{i + 1}"),), source=source))
    for role, specs, example in ((VERIFIER, verifier_specs, "h200-fleet=h200.pub"),
                                 (SCANNER, scanner_specs, "nightly-rescan=rescan.pub"),
                                 (REBUILDER, rebuilder_specs, "second-builder=rebuilder.pub")):
        for spec in specs:
            label, sep, source = spec.partition("=")
            if not sep or not LABEL_RE.match(label) or not source:
                raise InvalidInput(f"--{role} {spec!r} is not LABEL=PUB", hint=f"e.g. --{role} {example}")
            public = keys.load_public(source)
            extra.append(TrustedKey(public=public, fingerprint=keys.fingerprint(public), roles=((role, label),),
                                    source=source))
    policy = policy.with_keys(extra)
    return policy.with_flags(require_gpu_verified=require_gpu_verified, gpu_arch=gpu_arch, min_driver=min_driver,
                             max_scan_age=max_scan_age, scan_fail_on=scan_fail_on, require_rebuilt=require_rebuilt)
