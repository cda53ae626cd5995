#!/bin/sh
# Installs the Debian packages the tests drive, named as arguments: the real S3 clients of
# tests/clients/ (awscli, rclone) and the browser of tests/cluster/test_console.py (chromium
# and its matching chromium-driver: the machine reaches no browser download site).
# Idempotent and quick when all are there (one dpkg query each, no network); when one is
# missing it refreshes the package lists once, then installs what is missing. Needs root
# (or sudo) only in that case. Exit status 0 when all are installed at the end.
set -eu

PACKAGES="$*"

missing=""
for pkg in $PACKAGES; do
    # dpkg-query answers "install ok installed" only for a fully installed package.
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [ "$status" != "install ok installed" ]; then
        missing="$missing $pkg"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "tests/debian_packages.sh: apt-get not found; install$missing by hand" >&2
    exit 1
fi

as_root=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root="sudo -n"
    else
        echo "tests/debian_packages.sh: not root and no sudo; install$missing by hand" >&2
        exit 1
    fi
fi

echo "tests/debian_packages.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# An update is needed on a fresh image: its package lists are empty or stale.
$as_root apt-get update -q >/dev/null
# shellcheck disable=SC2086 - the list is meant to split into words
$as_root apt-get install -y -q --no-install-recommends $missing >/dev/null
