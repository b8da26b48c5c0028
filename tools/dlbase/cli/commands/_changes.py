"""Printing grouped differences (diff, rebuild-check) as tables."""

from __future__ import annotations

from dlbase.examine import snapshot
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
