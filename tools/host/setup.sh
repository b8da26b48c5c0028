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
#   - cosign           sigstore's CLI, a test dependency: the integration tests check that
#                      cosign accepts what dlbase signs and dlbase what cosign signs. Debian
#                      12 packages none; Debian 13's cosign (2.5.0) depends only on
#                      libc6 >= 2.34, so on bookworm it comes from trixie through an apt
#                      pin at priority 100 that takes nothing else from there (only what is
#                      named as NAME/trixie), and a simulation first refuses any other
#                      trixie package. Elsewhere it comes from the host's own sources, or
#                      is reported missing (its tests then skip; CI fails them).
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
#   DLBASE_TRIXIE_MIRROR    the Debian mirror for trixie (default http://deb.debian.org/debian)
#   DLBASE_APT_ETC          apt's configuration folder (default /etc/apt; tests point it elsewhere)
#   DLBASE_OS_RELEASE       the os-release file read for the codename (default /etc/os-release)
set -euo pipefail

PACKAGES=(docker.io debootstrap docker-registry apache2-utils ca-certificates)
DOCKERD_TIMEOUT="${DLBASE_DOCKERD_TIMEOUT:-60}"
DOCKERD_LOG="${DLBASE_DOCKERD_LOG:-/var/log/dlbase-dockerd.log}"
TRIXIE_PACKAGES=(cosign)
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
        die "installing $* would also take ${others[*]} from trixie; refusing (install cosign by hand)"
    fi
}

install_trixie_packages() {
    local pkg missing=() wanted=() release
    for pkg in "${TRIXIE_PACKAGES[@]}"; do
        if command -v "$pkg" >/dev/null 2>&1; then
            say "$pkg already present"
        else
            missing+=("$pkg")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return
    command -v apt-get >/dev/null || die "apt-get not found: this script supports Debian/Ubuntu only"
    export DEBIAN_FRONTEND=noninteractive
    release=$(codename)
    if [ "$release" = "bookworm" ]; then
        add_trixie_source
        apt_update
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
    install_trixie_packages
    start_dockerd
    say "done in $(( $(date +%s) - START ))s"
}

main "$@"
