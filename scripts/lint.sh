#!/usr/bin/env bash
# Lint the Ansible content and the changelog fragments, offline.
# Usage: scripts/lint.sh
#   ansible-lint (config: .ansible-lint, profile production, offline: true) on roles/ and playbooks/
#   antsibull-changelog lint (config: changelogs/config.yaml) on changelogs/fragments/
. "$(dirname "$0")/lib.sh"
sd_activate
cd "$SD_ROOT" || exit 1

rc=0
targets=()
for d in roles playbooks; do
  if [ -n "$(find "$d" -type f \( -name '*.yml' -o -name '*.yaml' \) -print -quit 2>/dev/null)" ]; then
    targets+=("$d")
  fi
done
if [ "${#targets[@]}" -gt 0 ]; then
  sd_log "ansible-lint ${targets[*]}"
  # ansible-lint keeps its cache (and a link to this collection) under $XDG_CACHE_HOME; keep it in .build.
  XDG_CACHE_HOME="$SD_BUILD/cache" \
    ansible-lint --offline --config-file .ansible-lint --profile production --nocolor "${targets[@]}" || rc=1
else
  sd_log "ansible-lint: no YAML under roles/ or playbooks/ yet, nothing to lint"
fi

sd_log "antsibull-changelog lint"
antsibull-changelog lint || rc=1

[ "$rc" -eq 0 ] && sd_log "lint: OK"
exit "$rc"
