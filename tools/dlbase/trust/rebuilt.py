"""Rebuilt identical: a second builder's signed word that the published digest came from its commit.

``dlbase rebuild-check VARIANT --attest REF --key KEY`` rebuilds the variant (two builds
from scratch, :mod:`dlbase.build.reproduce`) and, only when the digest both builds agree
on is REF's digest, signs a ``https://dlbase.dev/rebuilt-identical/v0.1`` statement about
it (:func:`dlbase.trust.predicates.rebuilt_predicate`). A different digest attaches
nothing and is exit 13 (not reproducible): evidence says only what was seen.

Here, pure: what a rebuild result says (:class:`Rebuild`, from ``RebuildResult.to_dict()``),
the comparison with the published digest, and the decisions `dlbase trust` makes about
the statements it finds: one counts for a ``rebuilt_identical`` requirement only when a
rebuilder key of the policy signed it, its own ``rebuiltDigest`` is the subject's digest,
and it names the revision the publisher's provenance names (a rebuild of another commit
that happens to match proves nothing about this one). Gathering the image's Debian
packages and attaching are :mod:`dlbase.trust.attach`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlbase.core.errors import NotReproducible
from dlbase.define import labels as image_labels
from dlbase.trust.policy import REBUILDER, RebuildRequirement, TrustedKey, TrustPolicy
from dlbase.vuln.db import parse_time

REVISION_LABEL = image_labels.REVISION


@dataclass(frozen=True)
class Rebuild:
    """What one rebuild-check run says about itself (the keys of ``RebuildResult.to_dict()``)."""

    variant: str | None
    reproducible: bool
    builds: tuple[str, ...]  # the manifest digest of each build (two), as built
    image_ids: tuple[str, ...]
    revision: str | None
    source_date_epoch: int | None
    builder: dict = field(default_factory=dict)

    @classmethod
    def from_result(cls, body: dict) -> "Rebuild":
        builder = body.get("builder")
        epoch = body.get("source_date_epoch")
        try:
            epoch = int(epoch) if epoch is not None and not isinstance(epoch, bool) else None
        except (TypeError, ValueError):
            epoch = None
        return cls(variant=body.get("variant"), reproducible=bool(body.get("reproducible")),
                   builds=tuple(str(d) for d in body.get("digests") or ()),
                   image_ids=tuple(str(i) for i in body.get("image_ids") or ()),
                   revision=body.get("revision") if isinstance(body.get("revision"), str) else None,
                   source_date_epoch=epoch,
                   builder=dict(builder) if isinstance(builder, dict)
                   else ({"name": str(builder)} if builder else {}))

    @property
    def digest(self) -> str | None:
        """The manifest digest both builds agree on; None when they differ or made none
        (a builder that gives no manifest digest, e.g. the classic one)."""
        if len(self.builds) == 2 and self.builds[0] == self.builds[1] and self.builds[0].startswith("sha256:"):
            return self.builds[0]
        return None


def identical_digest(rebuild: Rebuild, published: str, published_digest: str) -> str:
    """The rebuilt digest when it is ``published_digest``; NotReproducible (exit 13) otherwise,
    with what differs, so that nothing is attached."""
    if not rebuild.reproducible:
        raise NotReproducible(f"{rebuild.variant}: the rebuild's own two builds differ "
                              f"({', '.join(rebuild.builds) or 'see the listing'}): nothing was attested",
                              hint="see the listing of what differs; only a reproducible rebuild can vouch")
    digest = rebuild.digest
    if digest is None:
        how = f" (builder {rebuild.builder['name']})" if rebuild.builder.get("name") else ""
        raise NotReproducible(f"{rebuild.variant}: the rebuild gave no manifest digest both builds agree on{how} "
                              f"to compare with {published}: nothing was attested",
                              hint="rebuild with BuildKit (docker buildx), whose builds of one commit give one "
                                   "digest; the classic builder's two builds are compared file by file, and "
                                   "their digests always differ")
    if digest != published_digest:
        raise NotReproducible(f"{rebuild.variant}: rebuilt {digest}, but {published} is {published_digest}: "
                              "not the same image, nothing was attested",
                              hint="rebuild from the image's own commit (`dlbase trust REF` shows it); if it is "
                                   "that commit, the Debian mirror moved packages since the publisher's build")
    return digest


def package_changes(published: dict[str, str], rebuilt: dict[str, str]) -> list[str]:
    """What moved between the Debian packages the publisher's provenance names and the
    ones this rebuild installed (both {name: version}), one line each, sorted by name:
    what a rebuild on a later mirror state reports instead of only "different"."""
    lines = []
    for name in sorted(set(published) | set(rebuilt)):
        before, after = published.get(name), rebuilt.get(name)
        if before == after:
            continue
        if before is None:
            lines.append(f"debian package {name}: not in the published image, rebuilt with {after}")
        elif after is None:
            lines.append(f"debian package {name}: {before} in the published image, not rebuilt")
        else:
            lines.append(f"debian package {name}: published {before}, rebuilt {after}")
    return lines


def explain(published: dict[str, str] | None, rebuilt: dict[str, str]) -> list[str]:
    """The details of a different digest: the package lines of :func:`package_changes`, or
    why there are none (no provenance with packages to compare; the same versions)."""
    if not published:
        return ["the published image's provenance names no Debian packages (pushed before dlbase recorded them, "
                "or it has no provenance): the package versions cannot be compared"]
    changes = package_changes(published, rebuilt)
    if not changes:
        return [f"the {len(rebuilt)} Debian packages are the versions the provenance names: the difference is "
                "elsewhere (`dlbase rebuild-check` without --attest lists what differs between two builds)"]
    return [f"compared with the provenance stored with the image (its signature is checked by `dlbase trust`, "
            f"not here): {len(changes)} Debian package(s) moved", *changes]


# --------------------------------------------------------------------------- checking


def reasons_against(view: dict, signer: TrustedKey | None, subject_digest: str, commit: str | None,
                    requirement: RebuildRequirement | None) -> list[str]:
    """Why one rebuilt-identical statement (:func:`predicates.rebuilt_view`) does not count
    ([] = it does). ``commit``: the revision the publisher's provenance names (None: none)."""
    why = []
    if signer is None or not signer.has(REBUILDER):
        who = signer.describe() if signer else "an unknown key"
        why.append(f"signed by {who}, not a rebuilder key of the policy")
    elif requirement and requirement.rebuilders and signer.label_for(REBUILDER) not in requirement.rebuilders:
        why.append(f"rebuilder {signer.label_for(REBUILDER)} is not one of {', '.join(requirement.rebuilders)}")
    if view.get("digest") != subject_digest:
        why.append(f"its rebuilt digest {view.get('digest')} is not the image's")
    if not view.get("revision"):
        why.append("it names no source revision")
    elif commit and view["revision"] != commit:
        why.append(f"rebuilt from {str(view['revision'])[:12]}, the provenance names {commit[:12]}")
    return why


def unmet(policy: TrustPolicy, rows: list[dict]) -> str | None:
    """Whether the rebuilt-identical requirement is met by the rows that count (distinct keys)."""
    req = policy.rebuilt
    if req is None:
        return None
    vouching = {r["signer"].fingerprint for r in rows if not r["unmet"] and r.get("signer") is not None}
    if len(vouching) >= req.count:
        return None
    if not policy.of_role(REBUILDER):
        return "the policy names no rebuilder key, so no rebuilt-identical statement can count"
    return f"{len(vouching)} of {req.count} required rebuilder key(s) vouch for it"


def newest_first(rows: list[dict]) -> list[dict]:
    """Rows (each with a ``predicate`` view) newest first; undated ones last."""
    def when(row: dict):
        return parse_time(row["predicate"].get("when"))

    dated = sorted((r for r in rows if when(r) is not None), key=when, reverse=True)
    return dated + [r for r in rows if when(r) is None]
