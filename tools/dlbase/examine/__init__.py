"""Looking at images that exist: finding them, their layers, snapshots, differences, reports."""
