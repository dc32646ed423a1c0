#!/usr/bin/env bash
# Install everything ShadowDesk needs on a fresh Debian 12 machine (as root) and make the venv.
# Idempotent: a second run only checks. Usage: scripts/bootstrap.sh
. "$(dirname "$0")/lib.sh"

# python3-dev: libvirt-python compiles against Python.h. openjdk-17-jre-headless: ansible-rulebook (Drools).
# postgresql: the shared history store's tests start a server of their own. chromium: the HTML report is rendered
# in a test. nftables: the network shadow's host-side filtering. procps: sysctl in the network-namespace tests.
apt_packages=(libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-utils libvirt-dev pkg-config gcc
              busybox-static cpio python3-dev python3-venv openssl iproute2 procps shellcheck
              openjdk-17-jre-headless postgresql chromium nftables)
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  sd_log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp="$SD_VENV/.requirements.sha256"
want="$(cat "$SD_ROOT/requirements.txt" "$SD_ROOT/tests/requirements.txt" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$SD_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  sd_log "venv: $SD_VENV"
  command -v "$SD_PYTHON" >/dev/null || SD_PYTHON=python3
  "$SD_PYTHON" -m venv "$SD_VENV"
  "$SD_VENV/bin/pip" install -q --upgrade pip
  "$SD_VENV/bin/pip" install -q -r "$SD_ROOT/requirements.txt" -r "$SD_ROOT/tests/requirements.txt"
  echo "$want" > "$stamp"
fi
sd_collection_link
sd_log "bootstrap done"
