#!/usr/bin/env bash
# The whole test suite, from a clean clone on a fresh Debian 12 machine (as root):
#   installs what it needs (apt packages, venv, libvirt test bed, guest image), then runs
#   ansible-test sanity + units, ansible-lint, changelog lint, and pytest (unit + integration on real
#   libvirtd/QEMU guests, the Proxmox VE stand-in, real Prophet, real ansible-playbook runs).
# Usage: scripts/test.sh [extra pytest args]
. "$(dirname "$0")/lib.sh"
started=$(date +%s)
bash "$SD_ROOT/scripts/bootstrap.sh"
bash "$SD_ROOT/scripts/testbed/setup.sh"
sd_activate

status=0
step() {
  local name=$1; shift
  sd_log "== $name"
  local t0; t0=$(date +%s)
  if "$@"; then sd_log "== $name: ok ($(( $(date +%s) - t0 )) s)"; else sd_log "== $name: FAILED ($(( $(date +%s) - t0 )) s)"; status=1; fi
}

step "ansible-test sanity + units" bash "$SD_ROOT/scripts/ansible_test.sh" all
step "ansible-lint + changelog lint" bash "$SD_ROOT/scripts/lint.sh"
# pytest last: its closing line is the suite's summary.
step "pytest" python -m pytest -p no:cacheprovider "$@"
sd_log "total $(( $(date +%s) - started )) s"
exit $status
