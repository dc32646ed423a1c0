#!/usr/bin/env bash
# The main job on the embedded default: sets everything up (apt packages, venv, local libvirtd, guest image)
# and runs the ShadowDesk demo playbook on the local libvirt with a local data dir.
# Usage: scripts/demo.sh [extra ansible-playbook args]
. "$(dirname "$0")/lib.sh"
bash "$SD_ROOT/scripts/bootstrap.sh"
bash "$SD_ROOT/scripts/testbed/setup.sh"
sd_activate
export SHADOWDESK_DATA_DIR="${SHADOWDESK_DATA_DIR:-$SD_BUILD/data}"
mkdir -p "$SHADOWDESK_DATA_DIR"
cd "$SD_ROOT" || exit 1
exec ansible-playbook shadowdesk.vdi.demo \
  -e shadowdesk_demo_guest_dir="$(bash "$SD_ROOT/scripts/testbed/build_guest.sh" --print-dir)" "$@"
