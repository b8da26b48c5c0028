#!/usr/bin/env bash
# Host set-up for dlbase on a fresh Debian/Ubuntu machine, run as root, no stdin.
#
# Why a script and not a README section: CI (.ci/run) and every developer machine start
# bare, and whatever a session installs by hand is gone on the next machine. This script
# is the one place that makes a host able to build, run and publish images:
#   - docker.io 26.1   the Docker engine with the containerd image store and BuildKit
#     docker-cli       (buildx): on Debian 12, Debian 13's packages through the same pin
#     docker-buildx    as cosign (bookworm's own docker.io is 20.10, out of support since
#                      2023, and has no buildx). Their versioned dependencies (containerd
#                      >= 1.4, runc >= 1.0, tini, libc6 >= 2.34) come from bookworm. A
#                      machine whose daemon already answers keeps its Docker (a hosted
#                      runner's Docker CE); a daemon older than 26 that is Debian's own
#                      docker.io is replaced (stopped, upgraded, started), never run twice.
#                      No registry is reachable, so every image starts from a local import.
#   - debootstrap      builds the Debian 12 minbase rootfs that `docker import` turns
#                      into the base image (tools/dlbase/build/base.py)
#   - docker-registry  Debian's distribution 2.8, the real registry for publish tests
#   - apache2-utils    htpasswd, for registry basic-auth tests
#   - ca-certificates  TLS to the Debian mirror and PyPI
#   - cosign           sigstore's CLI, a test dependency: the integration tests check that
#                      cosign accepts what dlbase signs and dlbase what cosign signs. Debian
#                      12 packages none; Debian 13's cosign (2.5.0) depends only on
#                      libc6 >= 2.34, so on bookworm it comes from trixie through an apt
#                      pin at priority 100 that takes nothing else from there (only what is
#                      named as NAME/trixie), and a simulation first refuses any other
#                      trixie package. Elsewhere it comes from the host's own sources, or
#                      is reported missing (its tests then skip; CI fails them).
# There is no systemd on these machines, so dockerd is started in the background here,
# with /etc/docker/daemon.json turning the containerd image store on (merged into what the
# file already holds): BuildKit's OCI exporter, and so digests two builds agree on, needs it.
#
# Idempotent: when every package is installed (or what it provides is already there) and a
# daemon answers it does nothing (no apt-get update), so `make setup` / .ci/run can call it
# on every run. A daemon that already answers (e.g. Docker CE on a hosted runner) is left
# alone and docker.io is not installed next to it.
#
# Environment:
#   DLBASE_DOCKERD_TIMEOUT  seconds to wait for a started dockerd to answer (default 60)
#   DLBASE_DOCKERD_LOG      where dockerd writes (default /var/log/dlbase-dockerd.log)
#   DLBASE_TRIXIE_MIRROR    the Debian mirror for trixie (default http://deb.debian.org/debian)
#   DLBASE_APT_ETC          apt's configuration folder (default /etc/apt; tests point it elsewhere)
#   DLBASE_OS_RELEASE       the os-release file read for the codename (default /etc/os-release)
#   DLBASE_DOCKER_ETC       dockerd's configuration folder (default /etc/docker)
#   DLBASE_DOCKER_PIDFILE   the running dockerd's pid file (default /var/run/docker.pid)
#   DLBASE_BUILDKIT_KEEP_STORAGE  a cap on BuildKit's cache written to daemon.json when it
#                           names no builder policy, e.g. 10GB (default: none, dockerd's own)
set -euo pipefail

PACKAGES=(debootstrap docker-registry apache2-utils ca-certificates)
ENGINE_PACKAGES=(docker.io docker-cli docker-buildx)
MIN_ENGINE_MAJOR=26
ENGINE_DEPENDENCIES=(containerd runc tini iptables)
DOCKERD_TIMEOUT="${DLBASE_DOCKERD_TIMEOUT:-60}"
DOCKERD_LOG="${DLBASE_DOCKERD_LOG:-/var/log/dlbase-dockerd.log}"
TRIXIE_PACKAGES=(docker.io docker-cli docker-buildx cosign)
DOCKER_ETC="${DLBASE_DOCKER_ETC:-/etc/docker}"
DOCKER_PIDFILE="${DLBASE_DOCKER_PIDFILE:-/var/run/docker.pid}"
BUILDKIT_KEEP_STORAGE="${DLBASE_BUILDKIT_KEEP_STORAGE:-}"
TRIXIE_MIRROR="${DLBASE_TRIXIE_MIRROR:-http://deb.debian.org/debian}"
APT_ETC="${DLBASE_APT_ETC:-/etc/apt}"
OS_RELEASE="${DLBASE_OS_RELEASE:-/etc/os-release}"
TRIXIE_SOURCES="${APT_ETC}/sources.list.d/dlbase-trixie.sources"
TRIXIE_PIN="${APT_ETC}/preferences.d/dlbase-trixie"
APT_UPDATED=0
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
    apt_update
    # --no-install-recommends: docker.io recommends a large toolchain we never use.
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    say "installed: ${missing[*]}"
}

apt_update() {
    if [ "$APT_UPDATED" -eq 0 ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
}

codename() {
    # A subshell: os-release's variables must not leak into this script.
    ( . "$OS_RELEASE" 2>/dev/null && printf '%s' "${VERSION_CODENAME:-}" ) || true
}

# Writes FILE with CONTENT unless it already holds exactly that; says whether it changed.
write_if_changed() {
    local file=$1 content=$2
    if [ -f "$file" ] && [ "$(<"$file")" = "${content%$'\n'}" ]; then
        return 1
    fi
    printf '%s' "$content" >"$file"
}

# trixie in apt's sources, pinned at 100: below bookworm's 500, so no installed package
# and no dependency is ever taken from trixie unless named as NAME/trixie.
add_trixie_source() {
    local changed=0
    [ -d "${APT_ETC}/sources.list.d" ] || die "${APT_ETC}/sources.list.d does not exist: is this a Debian host?"
    [ -d "${APT_ETC}/preferences.d" ] || die "${APT_ETC}/preferences.d does not exist: is this a Debian host?"
    write_if_changed "$TRIXIE_SOURCES" "# Written by dlbase tools/host/setup.sh: Debian 13 for the packages named NAME/trixie only.
Types: deb
URIs: ${TRIXIE_MIRROR}
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
" && changed=1
    write_if_changed "$TRIXIE_PIN" "# Written by dlbase tools/host/setup.sh: nothing comes from trixie unless named NAME/trixie.
Package: *
Pin: release n=trixie
Pin-Priority: 100
" && changed=1
    if [ "$changed" -eq 1 ]; then
        say "added Debian 13 (trixie) to apt at pin priority 100 (${TRIXIE_SOURCES}, ${TRIXIE_PIN})"
        APT_UPDATED=0  # the new source needs its package lists
    fi
}

# Refuses when installing NAME/trixie would take any other package from trixie.
check_trixie_only_named() {
    local line name others=()
    while IFS= read -r line; do
        [[ "$line" =~ ^Inst\ ([^ ]+)\ .*(Debian:13|trixie) ]] || continue
        name=${BASH_REMATCH[1]}
        [[ " ${TRIXIE_PACKAGES[*]} " == *" ${name} "* ]] || others+=("$name")
    done < <(apt-get install -s --no-install-recommends "$@")
    if [ "${#others[@]}" -gt 0 ]; then
        die "installing $* would also take ${others[*]} from trixie; refusing (install $* by hand)"
    fi
}

# The major version of a Docker binary's own --version line ("Docker version 26.1.5+dfsg1"), or 0.
binary_major() {
    local line
    line=$("$@" --version 2>/dev/null || true)
    [[ "$line" =~ version\ ([0-9]+)\. ]] && { printf '%s' "${BASH_REMATCH[1]}"; return; }
    printf '0'
}

server_major() {
    local v
    v=$(docker version -f '{{.Server.Version}}' 2>/dev/null || true)
    [[ "$v" =~ ^([0-9]+)\. ]] && { printf '%s' "${BASH_REMATCH[1]}"; return; }
    printf '0'
}

# Debian's own docker.io is installed (so this script may replace it).
debian_docker_io() {
    [ "$(dpkg-query -W -f='${Status}' docker.io 2>/dev/null || true)" = "install ok installed" ]
}

# Prints the engine packages this host needs: none when a daemon it should keep answers
# (any Docker >= 26, or a Docker that is not Debian's, e.g. Docker CE) or a dockerd >= 26 is
# there to start; otherwise Debian 13's engine, CLI and buildx.
missing_engine() {
    if daemon_answers; then
        if [ "$(server_major)" -ge "$MIN_ENGINE_MAJOR" ] || ! debian_docker_io; then
            if ! docker buildx version >/dev/null 2>&1 && debian_docker_io; then
                printf '%s\n' docker-buildx
            fi
            return
        fi
    elif command -v dockerd >/dev/null 2>&1 && [ "$(binary_major dockerd)" -ge "$MIN_ENGINE_MAJOR" ]; then
        docker buildx version >/dev/null 2>&1 || printf '%s\n' docker-buildx
        return
    elif command -v dockerd >/dev/null 2>&1 && ! debian_docker_io; then
        return  # a hand-installed engine of any version: start it, keep it
    fi
    printf '%s\n' "${ENGINE_PACKAGES[@]}"
}

# Stops the running dockerd that Debian's old docker.io started, before it is replaced.
stop_old_dockerd() {
    daemon_answers || return 0
    local pid waited=0
    pid=$(cat "$DOCKER_PIDFILE" 2>/dev/null || true)
    [ -n "$pid" ] || die "Debian's docker.io $(docker version -f '{{.Server.Version}}' 2>/dev/null) answers but ${DOCKER_PIDFILE} names no process: stop it by hand, then run this again"
    say "stopping Debian's dockerd $(docker version -f '{{.Server.Version}}' 2>/dev/null) (pid $pid) to replace it with 26.1"
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        [ "$waited" -ge "$DOCKERD_TIMEOUT" ] && die "dockerd (pid $pid) did not stop within ${DOCKERD_TIMEOUT}s"
        sleep 1
        waited=$((waited + 1))
    done
}

install_trixie_packages() {
    local pkg missing=() wanted=() release
    mapfile -t missing < <(missing_engine)
    [ "${#missing[@]}" -eq 0 ] && say "Docker engine: keeping what is here"
    if command -v cosign >/dev/null 2>&1; then
        say "cosign already present"
    else
        missing+=(cosign)
    fi
    [ "${#missing[@]}" -eq 0 ] && return
    [[ " ${missing[*]} " == *" docker.io "* ]] && stop_old_dockerd
    command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian/Ubuntu only"
    export DEBIAN_FRONTEND=noninteractive
    release=$(codename)
    if [ "$release" = "bookworm" ]; then
        add_trixie_source
        apt_update
        if [[ " ${missing[*]} " == *" docker.io "* ]]; then
            # Named first, from bookworm: `apt-get install docker.io/trixie` would otherwise
            # take trixie's containerd for a dependency that bookworm's already satisfies.
            say "installing the engine's dependencies from Debian 12: ${ENGINE_DEPENDENCIES[*]}"
            apt-get install -y -qq --no-install-recommends "${ENGINE_DEPENDENCIES[@]}" >/dev/null
        fi
        for pkg in "${missing[@]}"; do wanted+=("${pkg}/trixie"); done
        check_trixie_only_named "${wanted[@]}"
        say "installing from Debian 13 (trixie): ${missing[*]}"
        apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
        say "installed: ${missing[*]}"
        return
    fi
    apt_update
    for pkg in "${missing[@]}"; do
        if apt-get install -s --no-install-recommends "$pkg" >/dev/null 2>&1; then
            apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
            say "installed: $pkg"
        else
            say "WARNING: no $pkg package for ${release:-this system}: the tests that need it skip (CI," \
                "DLBASE_REQUIRE_DOCKER=1, fails them); install $pkg by hand"
        fi
    done
}

# Turns the containerd image store on in daemon.json, keeping every other setting there,
# and caps BuildKit's cache when DLBASE_BUILDKIT_KEEP_STORAGE asks for it. Why a cap: on the
# containerd store a BuildKit build of the default image keeps about 9 GB of cache (its
# unpacked steps and their compressed blobs) beside the 9.6 GB image; dockerd's own default
# lets that cache grow to a tenth of the disk before it collects, which a CI disk shared with
# a second full image and two wheelhouses did not have (ENOSPC at 97% of a run). A builder
# policy already in the file is the owner's and is kept.
configure_dockerd() {
    local file="${DOCKER_ETC}/daemon.json"
    mkdir -p "$DOCKER_ETC"
    python3 - "$file" "$BUILDKIT_KEEP_STORAGE" <<'PY' || die "${file} is not valid JSON: fix it or remove it, then run this again"
import json, os, sys
path, keep = sys.argv[1], sys.argv[2]
config = {}
if os.path.exists(path):
    with open(path) as fh:
        config = json.load(fh)
changed = []
features = config.setdefault("features", {})
if features.get("containerd-snapshotter") is not True:
    features["containerd-snapshotter"] = True
    changed.append("containerd image store turned on")
if keep and "builder" not in config:
    config["builder"] = {"gc": {"enabled": True, "defaultKeepStorage": keep}}
    changed.append(f"BuildKit cache capped at {keep}")
if changed:
    with open(path + ".tmp", "w") as fh:
        json.dump(config, fh, indent=2)
        fh.write("\n")
    os.replace(path + ".tmp", path)
    print(f"setup: {', '.join(changed)} in {path}")
PY
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
    configure_dockerd
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

# What the engine can do, said once: the builder dlbase will use and the image store.
report_engine() {
    local store buildx
    store=$(docker info -f '{{.DriverStatus}}' 2>/dev/null || true)
    buildx=$(docker buildx version 2>/dev/null | head -n1 || true)
    if [ -n "$buildx" ]; then
        say "BuildKit: ${buildx}"
    else
        say "no buildx: dlbase builds with the classic builder (--builder classic)"
    fi
    [[ "$store" == *io.containerd.snapshotter* ]] && say "image store: containerd" || say "image store: ${store:-?}"
}

main() {
    require_root
    install_packages
    install_trixie_packages
    start_dockerd
    report_engine
    say "done in $(( $(date +%s) - START ))s"
}

main "$@"
