"""Reading what a built image really contains, by running the probe inside it.

Its own module because both the builder (compare before tagging) and the reports (an
image without a build report) need it, and neither should import the other.
"""

from __future__ import annotations

from pathlib import Path

from dlbase.image import version_probe
from dlbase.engine import Engine
from dlbase.core import documents
from dlbase.core.errors import ImageMismatch

PROBE_MARKER = "DLBASE_PROBE "


def read_back(engine: Engine, image: str) -> dict:
    """Run the probe inside the image and return what it found."""
    source = Path(version_probe.__file__).read_text(encoding="utf-8")
    res = engine.run(image, ["python", "-c", source], timeout=300,
                     environment={"NO_ALBUMENTATIONS_UPDATE": "1"}, entrypoint=[],
                     labels={"dlbase.purpose": "probe"})
    for line in res.output.splitlines():
        if line.startswith(PROBE_MARKER):
            source = documents.Source(f"the versions {image} printed", ImageMismatch)
            return documents.expect_object(documents.parse_json(line[len(PROBE_MARKER):], "image-probe", source),
                                           source)
    raise ImageMismatch(f"could not read the versions back from {image} (exit {res.exit_code})",
                        details=res.output.splitlines()[-15:])
