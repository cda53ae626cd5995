#!/bin/sh
# Installs the real S3 clients that tests/clients/ drives: Debian's awscli and rclone.
# Idempotent and quick when both are there (two dpkg queries, no network); when one is
# missing it refreshes the package lists once, then installs what is missing. Needs root
# (or sudo) only in that case. Exit status 0 when both are installed at the end.
set -eu

PACKAGES="awscli rclone"

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
    echo "tests/clients/setup.sh: apt-get not found; install$missing by hand" >&2
    exit 1
fi

as_root=""
if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then
        as_root="sudo -n"
    else
        echo "tests/clients/setup.sh: not root and no sudo; install$missing by hand" >&2
        exit 1
    fi
fi

echo "tests/clients/setup.sh: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# An update is needed on a fresh image: its package lists are empty or stale.
$as_root apt-get update -q >/dev/null
# shellcheck disable=SC2086 - the list is meant to split into words
$as_root apt-get install -y -q --no-install-recommends $missing >/dev/null
