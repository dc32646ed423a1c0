#!/usr/bin/env bash
# Make the real libvirt + QEMU test bed ready (idempotent; a second run takes well under a second):
#   scripts/bootstrap.sh            only if the venv is missing (apt packages + .venv)
#   scripts/testbed/start_libvirtd.sh  daemons without systemd, isolated network, storage pool
#   scripts/testbed/build_guest.sh     Debian cloud kernel + busybox initramfs + golden qcow2 (cached)
# Called by the integration tests (tests/integration/testbed.py) and the benchmarks. Quiet on success.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
if [ ! -x "${SD_VENV:-$root/.venv}/bin/python" ] || ! command -v libvirtd >/dev/null || ! command -v busybox >/dev/null; then
  "$root/scripts/bootstrap.sh"
fi
"$here/start_libvirtd.sh"
"$here/build_guest.sh"
mkdir -p /var/log/libvirt/shadowdesk
