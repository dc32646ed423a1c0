# shellcheck shell=bash
# Common paths for ShadowDesk scripts. Source it: . "$(dirname "$0")/lib.sh"
set -euo pipefail
SD_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SD_VENV="${SD_VENV:-$SD_ROOT/.venv}"
SD_BUILD="${SD_BUILD:-$SD_ROOT/.build}"
SD_COLLECTIONS="$SD_BUILD/collections"
SD_COLLECTION_LINK="$SD_COLLECTIONS/ansible_collections/shadowdesk/vdi"
SD_PYTHON="${SD_PYTHON:-python3.11}"
export SD_ROOT SD_VENV SD_BUILD SD_COLLECTIONS SD_COLLECTION_LINK

sd_log() { printf '[shadowdesk] %s\n' "$*" >&2; }

# Make the collection importable as ansible_collections.shadowdesk.vdi (symlink to this checkout).
sd_collection_link() {
  mkdir -p "$(dirname "$SD_COLLECTION_LINK")"
  if [ ! -L "$SD_COLLECTION_LINK" ] || [ "$(readlink "$SD_COLLECTION_LINK")" != "$SD_ROOT" ]; then
    rm -rf "$SD_COLLECTION_LINK"
    ln -s "$SD_ROOT" "$SD_COLLECTION_LINK"
  fi
}

sd_activate() {
  # shellcheck disable=SC1091
  . "$SD_VENV/bin/activate"
  sd_collection_link
  export ANSIBLE_COLLECTIONS_PATH="$SD_COLLECTIONS"
  export PYTHONPATH="$SD_COLLECTIONS${PYTHONPATH:+:$PYTHONPATH}"
  export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
}
