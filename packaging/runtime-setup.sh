#!/bin/sh
# runtime-setup.sh — turns a Debian bookworm root into the runtime image of iac-agent and iac-coordinator.
#
# Run as root inside the root it prepares: by the Dockerfile's runtime stage, and by `make check-image` in a
# debootstrap'd chroot, so the check exercises the same steps the image is built with. It installs exactly the
# packages of runtime-packages.txt (the file beside this script, or $1) and nothing they merely recommend, creates
# the unprivileged user (uid/gid 10001, home = the data directory, so ~/.terraform.d/credentials.tfrc.json and
# ~/.ssh are writable when the root file system is read-only) and the data directory /var/lib/iac-agent.
#
# IAC_SETUP_KEEP_APT=1 keeps apt's package lists and downloaded archives (check-image caches them between runs);
# the image drops them.
set -eu

list=${1:-$(dirname "$0")/runtime-packages.txt}
[ -r "$list" ] || { echo "runtime-setup: cannot read the package list $list" >&2; exit 1; }
packages=$(sed -e 's/#.*//' "$list" | tr -s ' \t\n' ' ')
[ -n "${packages# }" ] || { echo "runtime-setup: $list names no package" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # one word per package
apt-get install -y --no-install-recommends $packages
if [ "${IAC_SETUP_KEEP_APT:-0}" != 1 ]; then
    apt-get clean
    rm -rf /var/lib/apt/lists/*
fi

getent group 10001 >/dev/null || groupadd --system --gid 10001 iac
getent passwd 10001 >/dev/null ||
    useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/iac-agent --no-create-home \
        --shell /usr/sbin/nologin iac
install -d -o 10001 -g 10001 -m 0750 /var/lib/iac-agent
