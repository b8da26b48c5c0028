#!/usr/bin/env bash
# cosign 3 (Debian sid's 3.1.1) for the interop tests, unpacked into one folder: no system change.
#
# Why a second cosign: tools/host/setup.sh installs Debian 13's cosign 2.5 (legacy .sig/.att
# tags); cosign 3 signs in the Sigstore bundle format by default and stores bundles as OCI
# 1.1 referrers (on a registry without the referrers API, an index tagged sha256-<hex>).
# tests/integration/test_cosign3_interop.py checks that dlbase reads what it writes. Debian
# sid's package depends only on libc6 and runs on Debian 12; installing it with apt would
# pull sid into the system, so it is fetched with a private apt configuration (its own
# sources list naming sid, its own lists and cache under DIR/apt) and unpacked with
# `dpkg -x` into DIR/root. The system's apt sources, lists and packages are untouched.
#
# Idempotent: when DIR/root/usr/bin/cosign runs it does nothing (no network).
#
# Environment:
#   DLBASE_COSIGN3_DIR   where it goes (default /tmp/cosign3; the test reads the same
#                        variable, or DLBASE_COSIGN3 naming the binary itself)
#   DLBASE_SID_MIRROR    the Debian mirror for sid (default http://deb.debian.org/debian)
set -euo pipefail

DIR="${DLBASE_COSIGN3_DIR:-/tmp/cosign3}"
MIRROR="${DLBASE_SID_MIRROR:-http://deb.debian.org/debian}"
BIN="${DIR}/root/usr/bin/cosign"

say() { printf 'cosign3: %s\n' "$*"; }
die() { printf 'cosign3: ERROR: %s\n' "$*" >&2; exit 1; }

if [ -x "$BIN" ] && "$BIN" version >/dev/null 2>&1; then
    say "already at ${BIN}"
    exit 0
fi
command -v apt-get >/dev/null 2>&1 || die "no apt-get: this script fetches Debian's package; install cosign 3 by hand and set DLBASE_COSIGN3"
command -v dpkg >/dev/null 2>&1 || die "no dpkg to unpack the package with"

APT="${DIR}/apt"
mkdir -p "${APT}/sources.list.d" "${APT}/preferences.d" "${APT}/lists/partial" "${APT}/cache/archives/partial"
printf 'deb %s sid main\n' "$MIRROR" > "${APT}/sid.list"
OPTS=(-o "Dir::Etc::SourceList=${APT}/sid.list" -o "Dir::Etc::SourceParts=${APT}/sources.list.d"
      -o "Dir::Etc::Preferences=${APT}/preferences" -o "Dir::Etc::PreferencesParts=${APT}/preferences.d"
      -o "Dir::State::Lists=${APT}/lists" -o "Dir::Cache=${APT}/cache" -o "APT::Architecture=$(dpkg --print-architecture)")

say "reading sid's package list (private apt configuration under ${APT})"
apt-get "${OPTS[@]}" -qq update
cd "$DIR"
rm -f cosign_*.deb
apt-get "${OPTS[@]}" -qq download cosign
deb=$(ls cosign_*.deb)
rm -rf "${DIR}/root"
dpkg -x "$deb" "${DIR}/root"
"$BIN" version >/dev/null 2>&1 || die "${BIN} from ${deb} does not run on this host"
say "cosign ${deb#cosign_} unpacked at ${BIN}"
