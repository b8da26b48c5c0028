"""Printing grouped differences (diff, rebuild-check) as tables."""

from __future__ import annotations

from dlbase.examine import layerdiff
from dlbase.image import snapshot
from dlbase.cli import ui


def print_changes(groups: dict[str, snapshot.Changes], *, limit: int = 40) -> None:
    """One table per non-empty group; long file lists are grouped by directory."""
    ui.table(["group", "added", "removed", "changed"],
             [[name, len(c.added), len(c.removed), len(c.changed)] for name, c in groups.items()],
             title="differences")
    for name, changes in groups.items():
        if changes.empty:
            continue
        rows = ([["+", k, "", ""] for k in changes.added] + [["-", k, "", ""] for k in changes.removed]
                + [["~", k, a, b] for k, a, b in changes.changed])
        if name == "files" and len(rows) > limit:
            by_dir: dict[str, list[int]] = {}
            for sign, paths in (("added", changes.added), ("removed", changes.removed),
                                ("changed", [k for k, _a, _b in changes.changed])):
                for directory, members in snapshot.group_paths(paths).items():
                    counts = by_dir.setdefault(directory, [0, 0, 0])
                    counts[("added", "removed", "changed").index(sign)] += len(members)
            ui.table(["directory", "added", "removed", "changed"],
                     [[d, *c] for d, c in sorted(by_dir.items())], title="files, by directory")
            rows = rows[:limit]
        ui.table(["", name, "A", "B"], rows, title=name if len(rows) <= limit else f"{name} (first {limit})")


def print_layer_diff(found: layerdiff.ImageDiff, *, limit: int = 40) -> None:
    """Where two images part: one row per differing layer (its step, files, package moves),
    then each such layer's files with the reasons, then the config keys that differ."""
    ui.table(["layer", "step", "files differing", "debian packages"],
             [[f"{layer.index}", layerdiff.short_step(layer.step), len(layer.files),
               layerdiff.package_moves(layer.debian_packages) or "same"] for layer in found.layers],
             title=f"layers that differ (of {found.layer_counts[0]} / {found.layer_counts[1]})")
    for layer in found.layers:
        rows = [[f.path, ", ".join(f.reasons), f.a, f.b] for f in layer.files]
        title = f"layer {layer.index}: {layerdiff.short_step(layer.step)}"
        ui.table(["path", "why", "build 1", "build 2"], rows[:limit],
                 title=title if len(rows) <= limit else f"{title} (first {limit} of {len(rows)})")
    if found.config:
        ui.table(["config key", "build 1", "build 2"],
                 [[k, _cell(a), _cell(b)] for k, a, b in found.config[:limit]], title="image config")


def _cell(value: object, width: int = 120) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[:width - 3] + "..."
