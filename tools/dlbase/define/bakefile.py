"""What ci/docker-bake.hcl names, in one place: its path and each variant's target name.

Why: bake (buildx 0.13) accepts only ``[a-zA-Z0-9_-]+`` as a target or group name, and
variant names carry dots (``torch2.6-...-ubuntu22.04``), so the file cannot use them as
they are. The renderer and `dlbase bake` both map a variant to its target here, so the
two can never disagree; the mapping is one-to-one over the matrix (checked).
"""

from __future__ import annotations

import re

from dlbase.core.errors import InvalidInput

BAKE_FILE = "ci/docker-bake.hcl"
GROUPS = ("default", "all")  # the groups templates/docker-bake.hcl.j2 defines
_NAME_OK = re.compile(r"^[A-Za-z0-9_-]+\Z")


def target_name(variant: str) -> str:
    """The bake target of ``variant``: dots (not allowed by bake) become underscores
    (not used in variant names, which `variant_targets` checks)."""
    name = variant.replace(".", "_")
    if not _NAME_OK.match(name):
        raise InvalidInput(f"variant {variant!r} has no valid bake target name ({name!r})",
                           hint="variant names may use letters, digits, '-' and '.' only")
    return name


def variant_targets(variants: list[str]) -> dict[str, str]:
    """target name -> variant, for every variant; two variants that would share a target
    (or a target that would shadow a group) are an error, never a silent overwrite."""
    out: dict[str, str] = {}
    for variant in variants:
        name = target_name(variant)
        if name in out or name in GROUPS:
            raise InvalidInput(f"variants {out.get(name, name)!r} and {variant!r} map to one bake target {name!r}",
                               hint="rename one of them in images/matrix.yaml")
        out[name] = variant
    return out
