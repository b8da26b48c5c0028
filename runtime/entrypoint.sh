#!/bin/sh
# The image's entrypoint, run by tini (PID 1) before the command (dlbase: runtime/entrypoint.sh).
#
# 1. Any UID works: when HOME is missing or not writable (`docker run -u 4242:4242` gets
#    HOME=/ from Docker), HOME becomes /tmp/dlbase-home-<uid>; the caches of torch, triton,
#    matplotlib, pip and Jupyter follow HOME unless the caller set them.
# 2. The preflight (/opt/dlbase/preflight.py, stdlib only, no torch) checks driver, GPU arch,
#    /dev/shm and /workspace and prints a one-line fix per problem; it stops the container
#    (exit 78) only for what would fail for sure; a preflight that fails otherwise is reported
#    and the command runs. DLBASE_SKIP_PREFLIGHT=1 skips it.
# 3. exec the command, so signals from tini reach it directly.
set -e

uid=$(id -u)
if [ -z "${HOME:-}" ] || [ "$HOME" = / ] || ! [ -d "$HOME" ] || ! [ -w "$HOME" ]; then
    HOME="/tmp/dlbase-home-$uid"
    mkdir -p -m 700 "$HOME"
fi
export HOME
export XDG_CACHE_HOME="${XDG_CACHE_HOME:-$HOME/.cache}"
export XDG_CONFIG_HOME="${XDG_CONFIG_HOME:-$HOME/.config}"
export XDG_DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
export TORCH_HOME="${TORCH_HOME:-$XDG_CACHE_HOME/torch}"
export TRITON_CACHE_DIR="${TRITON_CACHE_DIR:-$XDG_CACHE_HOME/triton}"
export MPLCONFIGDIR="${MPLCONFIGDIR:-$XDG_CONFIG_HOME/matplotlib}"
export IPYTHONDIR="${IPYTHONDIR:-$XDG_CONFIG_HOME/ipython}"
export JUPYTER_CONFIG_DIR="${JUPYTER_CONFIG_DIR:-$XDG_CONFIG_HOME/jupyter}"
export JUPYTER_DATA_DIR="${JUPYTER_DATA_DIR:-$XDG_DATA_HOME/jupyter}"
export JUPYTER_RUNTIME_DIR="${JUPYTER_RUNTIME_DIR:-$XDG_DATA_HOME/jupyter/runtime}"

if [ "${DLBASE_SKIP_PREFLIGHT:-0}" != 1 ] && [ -f /opt/dlbase/preflight.py ]; then
    # Only the preflight's documented stop (78) stops the container; any other failure of
    # the check itself (a crash, no python, killed) is reported and the command still runs.
    rc=0
    python -I -S /opt/dlbase/preflight.py || rc=$?
    if [ "$rc" -eq 78 ]; then
        exit 78
    elif [ "$rc" -ne 0 ]; then
        echo "dlbase preflight: the check itself failed (exit $rc); the command runs anyway" >&2
    fi
fi

if [ "$#" -eq 0 ]; then
    set -- python
fi
exec "$@"
