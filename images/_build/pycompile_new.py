"""Byte-compile the .py files under the given folders that have no .pyc yet (runs in the image).

Why: each layer group is installed by its own RUN. `compileall -f` would rewrite every
.pyc of the lower layers too (same bytes, but a copy-up into the new layer: 3 GB of torch
shadowed by a pillow bump). So each RUN compiles only what its own install added: a
source whose .pyc exists was compiled in a lower layer, from a file no later layer
changed. Unchecked-hash .pyc files carry no timestamp, so two builds write the same bytes.
Copied into the image by the Dockerfile; it imports nothing from dlbase.
"""

import compileall
import importlib.util
import os
import py_compile
import sys


class CompiledAlready:
    """compileall's `rx` hook: skip a source whose .pyc exists (written by a lower layer)."""

    def search(self, path):
        if not path.endswith(".py"):
            return True
        return os.path.exists(importlib.util.cache_from_source(path))


def main(folders):
    ok = True
    for folder in folders:
        ok &= bool(compileall.compile_dir(folder, quiet=1, force=True, rx=CompiledAlready(), workers=0,
                                          invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
