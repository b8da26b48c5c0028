"""Where things are inside a dlbase image, for the host side that names them.

The templates render these into every Dockerfile (through define/render.py), the launcher
mounts the user's folder and publishes the notebook port by them, and the builder copies
its files under the image root: each is written here once. (runtime/preflight.py runs inside
the image without dlbase; it reads the workspace from DLBASE_WORKSPACE, defaulting to the
same path.)
"""

from __future__ import annotations

#: dlbase's own files in the image: the lock, image.json, the tests, the entrypoint.
IMAGE_ROOT = "/opt/dlbase"
#: The working directory, where `dlbase run` mounts the user's folder.
WORKSPACE = "/workspace"
#: The port JupyterLab listens on in a notebook image.
NOTEBOOK_PORT = 8888
