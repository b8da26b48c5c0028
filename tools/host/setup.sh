#!/usr/bin/env bash
# Host set-up for dlbase on a fresh Debian/Ubuntu machine, run as root, no stdin.
#
# Why a script and not a README section: CI (.ci/run) and every developer machine start
# bare, and whatever a session installs by hand is gone on the next machine. This script
# is the one place that makes a host able to build, run and publish images:
#   - docker.io        Debian's Docker engine (dockerd + CLI); no registry is reachable,
#                      so everything the project builds starts from a local import
#   - debootstrap      builds the Debian 12 minbase rootfs that `docker import` turns
#                      into the base image (tools/dlbase/build/base.py)
#   - docker-registry  Debian's distribution 2.8, the real registry for publish tests
#   - apache2-utils    htpasswd, for registry basic-auth tests
#   - ca-certificates  TLS to the Debian mirror and PyPI
# There is no systemd on these machines, so dockerd is started in the background here.
#
# Idempotent: when every package is installed (or what it provides is already there) and a
# daemon answers it does nothing (no apt-get update), so `make setup` / .ci/run can call it
# on every run. A daemon that already answers (e.g. Docker CE on a hosted runner) is left
# alone and docker.io is not installed next to it.
#
# Environment:
#   DLBASE_DOCKERD_TIMEOUT  seconds to wait for a started dockerd to answer (default 60)
#   DLBASE_DOCKERD_LOG      where dockerd writes (default /var/log/dlbase-dockerd.log)
set -euo pipefail

PACKAGES=(docker.io debootstrap docker-registry apache2-utils ca-certificates)
DOCKERD_TIMEOUT="${DLBASE_DOCKERD_TIMEOUT:-60}"
DOCKERD_LOG="${DLBASE_DOCKERD_LOG:-/var/log/dlbase-dockerd.log}"
START=$(date +%s)

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        die "must run as root (try: sudo $0)"
    fi
}

# What each package provides; a host that already has it (from any package: Docker CE's
# docker-ce, a hand-installed debootstrap) does not get the Debian package on top.
provided() {
    case "$1" in
        # A daemon that answers (Docker CE on a hosted runner, a remote DOCKER_HOST) or a
        # dockerd this script can start: installing docker.io next to Docker CE would
        # replace its containerd and break the runner's own Docker.
        docker.io)       daemon_answers || command -v dockerd >/dev/null 2>&1 ;;
        debootstrap)     command -v debootstrap >/dev/null 2>&1 ;;
        docker-registry) command -v docker-registry >/dev/null 2>&1 ;;
        apache2-utils)   command -v htpasswd >/dev/null 2>&1 ;;
        ca-certificates) [ -s /etc/ssl/certs/ca-certificates.crt ] ;;
        *)               return 1 ;;
    esac
}

# Prints the packages from PACKAGES that are needed: not installed and not provided otherwise.
missing_packages() {
    local pkg status
    for pkg in "${PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
        if [ "$status" != "install ok installed" ] && ! provided "$pkg"; then
            printf '%s\n' "$pkg"
        fi
    done
}

install_packages() {
    local missing
    mapfile -t missing < <(missing_packages)
    if [ "${#missing[@]}" -eq 0 ]; then
        say "nothing to install: ${PACKAGES[*]} (or what they provide) already present"
        return
    fi
    command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian/Ubuntu only"
    say "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # --no-install-recommends: docker.io recommends a large toolchain we never use.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    say "installed: ${missing[*]}"
}

# The `docker` found first on PATH may be a newer static client (a CI image may ship
# one); the daemon is Debian's. Either client talks to the daemon through API
# negotiation, so only the daemon's presence matters.
daemon_answers() {
    docker info >/dev/null 2>&1
}

start_dockerd() {
    if daemon_answers; then
        say "Docker daemon already answering ($(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
        return
    fi
    command -v dockerd >/dev/null || die "dockerd not found after installing docker.io"
    if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST}" != "unix:///var/run/docker.sock" ]; then
        die "DOCKER_HOST=${DOCKER_HOST} does not answer; this script only starts a local dockerd on /var/run/docker.sock (unset DOCKER_HOST or start that daemon)"
    fi
    # containerd is started by dockerd itself when no system containerd runs.
    say "starting dockerd (log: ${DOCKERD_LOG})"
    # setsid: its own session, so ending the caller's process group (a CI step, a
    # Ctrl-C in the terminal) leaves the daemon running for the next step.
    setsid nohup dockerd >"${DOCKERD_LOG}" 2>&1 </dev/null &
    local pid=$! waited=0
    until daemon_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "${DOCKERD_LOG}" >&2 || true
            die "dockerd exited during start-up (see ${DOCKERD_LOG})"
        fi
        if [ "$waited" -ge "$DOCKERD_TIMEOUT" ]; then
            tail -n 20 "${DOCKERD_LOG}" >&2 || true
            die "dockerd (pid $pid) did not answer within ${DOCKERD_TIMEOUT}s (see ${DOCKERD_LOG})"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "dockerd started (pid $pid, $(docker version -f '{{.Server.Version}}' 2>/dev/null || echo '?'), ${waited}s)"
}

main() {
    require_root
    install_packages
    start_dockerd
    say "done in $(( $(date +%s) - START ))s"
}

main "$@"
