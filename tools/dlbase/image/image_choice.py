"""Which of the daemon's images a variant name means: the rule, without a daemon.

Why a module of its own: a variant name is not an image. The daemon may hold images of
that variant from several repositories (the user's own builds, a copy pulled from a
registry, an unrelated project that happens to use the same variant names), and picking
"the newest one carrying the label" ran a stranger's image. Every verb that takes a variant
name (`verify`, `push`, `report`, `scan`, `run`, `bench`, the attestation steps) asks this
one rule, through :mod:`dlbase.image.local_image`, so they all pick the same image or all
refuse the same way. Pure: it reads the image summaries the engine lists.

The rule:

1. images in the preferred repository (the matrix's, when there is a project) win;
2. else the images that carry the variant label and have a tag must all be in one
   repository (an image tagged into two repositories, as a push does, counts in both);
   then the newest of them is taken;
3. images of several repositories and none preferred: refused, listing one per repository,
   newest first (what was just built is what is most likely meant, and a bounded list
   must not hide it behind older repositories that sort first), so the user names the one
   they mean (a reference or an image ID);
4. untagged images (an old build whose tag moved on) count only when no image of the
   variant is tagged: there is no repository to tell them apart by, and the newest is taken.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlbase.core import imageref
from dlbase.core.errors import InvalidInput

#: How many repositories an ambiguity error lists before "and N more".
SHOWN = 5


@dataclass(frozen=True)
class Candidate:
    """One image carrying the variant label."""

    image_id: str
    tags: tuple[str, ...]
    created: int

    @property
    def repositories(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(repository_of(t) for t in self.tags))

    def ref_in(self, repository: str | None) -> str:
        """Its first tag in ``repository`` (any first tag when None); its ID when untagged."""
        for tag in self.tags:
            if repository is None or repository_of(tag) == repository:
                return tag
        return self.image_id


@dataclass(frozen=True)
class Choice:
    """The image a variant name resolves to, and why (said to the user beside its ID)."""

    ref: str
    image_id: str
    why: str


class AmbiguousImage(InvalidInput):
    """Images of several repositories carry the variant label and none is preferred.

    Exit 2, as every other input that does not say what it means: the daemon is fine and
    nothing is missing; the name given fits more than one image."""


def repository_of(tag: str) -> str:
    """``host:5000/a/b:tag`` -> ``host:5000/a/b`` (a tag's colon is after the last slash)."""
    name, sep, tail = tag.rpartition(":")
    return name if sep and "/" not in tail else tag


def candidates(summaries: list[dict[str, Any]]) -> list[Candidate]:
    """Image summaries (``docker images``) -> candidates, newest first, each image once."""
    seen: dict[str, Candidate] = {}
    for summary in summaries:
        image_id = str(summary.get("Id") or "")
        if image_id and image_id not in seen:
            seen[image_id] = Candidate(image_id=image_id, tags=tuple(imageref.repo_tags(summary)),
                                       created=int(summary.get("Created") or 0))
    return sorted(seen.values(), key=lambda c: -c.created)


def choose(variant: str, summaries: list[dict[str, Any]], *, preferred: str | None = None) -> Choice | None:
    """The image ``variant`` means among ``summaries`` (the images labelled with it), by the
    rule above; None when there is none. Raises :class:`AmbiguousImage` for rule 3."""
    found = candidates(summaries)
    tagged = [c for c in found if c.tags]
    if preferred is not None:
        mine = [c for c in tagged if preferred in c.repositories]
        if mine:
            return Choice(mine[0].ref_in(preferred), mine[0].image_id,
                          f"the newest image of {variant} in the matrix's repository {preferred}")
    if tagged:
        shared = [r for r in tagged[0].repositories if all(r in c.repositories for c in tagged)]
        if not shared:
            raise _ambiguous(variant, tagged, preferred)
        where = shared[0]
        return Choice(tagged[0].ref_in(where), tagged[0].image_id,
                      f"the newest image of {variant} in {where}, the only repository holding images of it"
                      + (f" ({preferred} holds none)" if preferred else ""))
    if found:
        return Choice(found[0].image_id, found[0].image_id,
                      f"the newest untagged image of {variant} (no tagged image of it is on this daemon)")
    return None


def _ambiguous(variant: str, tagged: list[Candidate], preferred: str | None) -> AmbiguousImage:
    newest: dict[str, Candidate] = {}
    for cand in tagged:  # newest first, so the first seen per repository is its newest
        for repo in cand.repositories:
            newest.setdefault(repo, cand)
    rows = [f"{c.ref_in(repo)} ({imageref.short_id(c.image_id)})" for repo, c in newest.items()]
    shown = rows[:SHOWN] + ([f"and {len(rows) - SHOWN} more"] if len(rows) > SHOWN else [])
    mine = f"; none is in the matrix's repository {preferred}" if preferred else ""
    return AmbiguousImage(
        f"images of {len(newest)} repositories carry the variant label {variant}{mine}: which one is meant "
        "is not clear",
        hint="give the one you mean as a reference or an image ID instead of the variant name "
             "(`docker images` lists them)",
        details=shown)
