#!/usr/bin/env bash
# Run `ansible-test sanity` / `ansible-test units` for shadowdesk.vdi, offline-capable.
#
# Usage: scripts/ansible_test.sh sanity|units|all [extra ansible-test args...]
#   e.g. scripts/ansible_test.sh sanity --test pylint -v
#
# How (details and rationale: docs/testing-offline.md):
#  1. ansible-test needs cwd == .../ansible_collections/shadowdesk/vdi and resolves symlinks, so we keep a COPY of
#     the git-tracked + untracked-not-ignored files in .build/ansible-test/ansible_collections/shadowdesk/vdi
#     (incrementally synced; tests/output/ in the copy is kept: it holds ansible-test's controller venv).
#  2. ansible-test keeps its cache and sanity venvs under ~/.ansible/test. We point HOME at .build/ansible-test/home
#     (SD_ANSIBLE_TEST_HOME overrides) so they are project-local and CI-cacheable.
#  3. ansible-test bootstraps pip into every venv it makes with get-pip.py from a host we cannot reach. It first looks
#     for ~/.ansible/test/cache/get_pip_<ver>.py; we write a small stand-in there (heredoc below): it uses the stdlib
#     `ensurepip` and then pip installs the exact pip version ansible-test asked for from the configured index
#     (PyPI, or PIP_INDEX_URL / PIP_FIND_LINKS+PIP_NO_INDEX for air-gapped machines).
#  4. `ansible-test ... --venv --python 3.11` (SD_TEST_PYTHON overrides). Never --docker. No ignore files allowed.
. "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 sanity|units|all [ansible-test args...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
what="$1"; shift
case "$what" in sanity|units|all) ;; *) usage ;; esac

SD_TEST_PYTHON="${SD_TEST_PYTHON:-3.11}"
AT_ROOT="$SD_BUILD/ansible-test"
AT_COPY="$AT_ROOT/ansible_collections/shadowdesk/vdi"
AT_HOME="${SD_ANSIBLE_TEST_HOME:-$AT_ROOT/home}"
AT_BIN="$SD_VENV/bin/ansible-test"
[ -x "$AT_BIN" ] || { sd_log "no $AT_BIN: run scripts/bootstrap.sh first"; exit 1; }

# Policy: sanity must pass without ignore files.
shopt -s nullglob
ignores=("$SD_ROOT"/tests/sanity/ignore-*.txt)
shopt -u nullglob
if [ "${#ignores[@]}" -gt 0 ]; then
  sd_log "sanity ignore files are not allowed, fix the code instead: ${ignores[*]#"$SD_ROOT"/}"
  exit 1
fi

# Resolve the real interpreter before HOME changes (pyenv/asdf shims may depend on HOME) and put its directory first
# on PATH: ansible-test looks for `python3.11` on PATH and makes its venvs from the real (non-venv) interpreter.
py_bin="$(command -v "python$SD_TEST_PYTHON" || true)"
[ -n "$py_bin" ] || { sd_log "python$SD_TEST_PYTHON not found on PATH"; exit 1; }
py_real="$("$py_bin" -c 'import sys; print(sys.executable)')"
py_base="$("$py_bin" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
py_dir="$(dirname "$py_base")"
[ -x "$py_dir/python$SD_TEST_PYTHON" ] || py_dir="$(dirname "$py_real")"

# 1. sync the copy: exactly the git-tracked + untracked-not-ignored files; keep tests/output/ (ansible-test state)
"$SD_VENV/bin/python" - "$SD_ROOT" "$AT_COPY" <<'PY'
import os, shutil, subprocess, sys
src, dst = sys.argv[1], sys.argv[2]
out = subprocess.run(['git', '-C', src, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'],
                     check=True, capture_output=True).stdout.decode()
want = {p for p in out.split('\0') if p and os.path.lexists(os.path.join(src, p))}  # -c lists deleted files too
os.makedirs(dst, exist_ok=True)
copied = removed = 0
for rel in sorted(want):
    s, d = os.path.join(src, rel), os.path.join(dst, rel)
    if os.path.islink(s):
        if not (os.path.islink(d) and os.readlink(d) == os.readlink(s)):
            if os.path.lexists(d):
                shutil.rmtree(d) if os.path.isdir(d) and not os.path.islink(d) else os.remove(d)
            os.makedirs(os.path.dirname(d), exist_ok=True)
            os.symlink(os.readlink(s), d)
            copied += 1
        continue
    if os.path.isdir(s):  # e.g. a nested git repo listed by ls-files -o; not expected here
        continue
    st = os.stat(s)
    if os.path.islink(d) or os.path.isdir(d):
        shutil.rmtree(d) if os.path.isdir(d) and not os.path.islink(d) else os.remove(d)
    try:
        dt = os.stat(d)
        same = dt.st_size == st.st_size and int(dt.st_mtime) == int(st.st_mtime) and dt.st_mode == st.st_mode
    except FileNotFoundError:
        same = False
    if not same:
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copy2(s, d)
        copied += 1
for root, dirs, files in os.walk(dst, topdown=True):
    rel_root = os.path.relpath(root, dst)
    if rel_root == '.':
        dirs[:] = [x for x in dirs if x != '.git']
    if rel_root == 'tests':
        dirs[:] = [x for x in dirs if x != 'output']
    for name in files + [x for x in dirs if os.path.islink(os.path.join(root, x))]:
        rel = os.path.normpath(os.path.join(rel_root, name))
        if rel not in want:
            os.remove(os.path.join(root, name))
            removed += 1
for root, dirs, files in os.walk(dst, topdown=False):  # prune empty dirs (git has none)
    rel_root = os.path.relpath(root, dst)
    if rel_root == '.git' or rel_root.startswith('.git' + os.sep):
        continue
    if root != dst and not os.listdir(root) and rel_root != os.path.join('tests', 'output'):
        os.rmdir(root)
# ansible-test finds its file list with `git ls-files --cached --others --exclude-standard` in the nearest git
# work tree; without its own .git the copy would resolve to this checkout, where .build/ is ignored (no targets).
# An empty repository in the copy lists exactly the files synced above (its .gitignore is the project's).
if not os.path.isdir(os.path.join(dst, '.git')):
    subprocess.run(['git', 'init', '-q', dst], check=True)
print(f'[shadowdesk] synced {len(want)} files into {dst} ({copied} copied, {removed} removed)', file=sys.stderr)
PY

# 2./3. project-local ansible-test home with the offline get-pip stand-in
real_home="$HOME"
pip_ver="$("$SD_VENV/bin/python" - "$SD_TEST_PYTHON" <<'PY'
import sys, types
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(types.SimpleNamespace(version=sys.argv[1]))['pip'])
PY
)"
cache_dir="$AT_HOME/.ansible/test/cache"
mkdir -p "$cache_dir"
# The stand-in for get-pip.py. ansible-test runs it (via runpy) as: get_pip.py [pip options] pip==X [--no-setuptools]
# [--no-wheel], with sys.executable = the new, empty venv.
cat > "$cache_dir/get_pip_${pip_ver//./_}.py" <<'PY'
"""Offline stand-in for get-pip.py, written by shadowdesk scripts/ansible_test.sh (see docs/testing-offline.md).

1. `python -m ensurepip` puts the pip wheel bundled with CPython into the empty venv (no network).
2. That pip installs the exact packages ansible-test asked for (e.g. pip==24.2) from the configured index
   (PyPI, or PIP_INDEX_URL / PIP_FIND_LINKS + PIP_NO_INDEX=1 on an air-gapped machine).
3. Like get-pip.py with --no-setuptools / --no-wheel, it leaves no setuptools/wheel behind.
"""
import subprocess
import sys

argv = sys.argv[1:]
drop = {'setuptools': '--no-setuptools' in argv, 'wheel': '--no-wheel' in argv}
args = [a for a in argv if a not in ('--no-setuptools', '--no-wheel')]
py = sys.executable


def run(*cmd):
    subprocess.check_call([py, *cmd])


def installed(name):
    return subprocess.call([py, '-m', 'pip', 'show', '-q', name],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0


had = {name: installed(name) for name in drop} if subprocess.call(
    [py, '-c', 'import pip'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) == 0 else {}
run('-m', 'ensurepip', '--default-pip')
run('-m', 'pip', 'install', '--upgrade', *args)
for name, no in drop.items():
    if no and not had.get(name) and installed(name):
        run('-m', 'pip', 'uninstall', '--yes', '--disable-pip-version-check', name)
PY

# Linux limits shebangs to 127 chars; ansible-test puts its sanity venvs at ~/.ansible/test/venv/<label>/<py>/<hash>.
probe="$AT_HOME/.ansible/test/venv/sanity.validate-modules/$SD_TEST_PYTHON/01234567/bin/python"
if [ "${#probe}" -gt 120 ]; then
  sd_log "path too long for venv shebangs (${#probe} chars): set SD_ANSIBLE_TEST_HOME to a shorter directory"; exit 1
fi

run_at() {
  # keep the user's pip configuration and cache (index/mirror settings matter offline) despite the HOME change
  local env=(HOME="$AT_HOME" PATH="$py_dir:$extra_path$PATH"
             XDG_CONFIG_HOME="${XDG_CONFIG_HOME:-$real_home/.config}"
             XDG_CACHE_HOME="${XDG_CACHE_HOME:-$real_home/.cache}"
             ANSIBLE_TEST_PREFER_PODMAN= ANSIBLE_NOCOLOR=1)
  if [ -z "${PIP_CONFIG_FILE:-}" ] && [ -f "$real_home/.pip/pip.conf" ]; then
    env+=(PIP_CONFIG_FILE="$real_home/.pip/pip.conf")
  fi
  # never let the developer's collection path / PYTHONPATH (symlink to the checkout) leak into ansible-test
  (cd "$AT_COPY" && env -u PYTHONPATH -u ANSIBLE_COLLECTIONS_PATH -u ANSIBLE_COLLECTIONS_PATHS -u VIRTUAL_ENV \
     "${env[@]}" "$AT_BIN" "$@")
}

# Other interpreters for the version-dependent tests (compile, import): ansible-test looks for pythonX.Y on PATH.
# SD_EXTRA_PYTHONS=auto (default) finds the ones ansible-test supports on PATH or under pyenv; "none" disables.
extra_path=""
extra_versions=()
if [ "${SD_EXTRA_PYTHONS:-auto}" != none ]; then
  supported="$("$SD_VENV/bin/python" -c 'from ansible_test._internal.constants import SUPPORTED_PYTHON_VERSIONS as v; print(*v)')"
  pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
  for v in $supported; do
    [ "$v" = "$SD_TEST_PYTHON" ] && continue
    [ "${SD_EXTRA_PYTHONS:-auto}" = auto ] || [[ " $SD_EXTRA_PYTHONS " == *" $v "* ]] || continue
    exe=""
    if p="$(command -v "python$v")" && "$p" -c '' 2>/dev/null; then  # pyenv shims exist but fail if not enabled
      exe="$("$p" -c 'import sys; print(getattr(sys, "_base_executable", sys.executable))')"
    else
      for c in "$pyenv_root"/versions/"$v".*/bin/python"$v"; do [ -x "$c" ] && "$c" -c '' 2>/dev/null && exe="$c"; done
    fi
    [ -n "$exe" ] || continue
    extra_path="$extra_path$(dirname "$exe"):"
    extra_versions+=("$v")
  done
fi

run_sanity() {
  # ansible-test only warns and skips the shellcheck test when the program is missing; we do not accept skips.
  if ! command -v shellcheck >/dev/null; then
    sd_log "shellcheck not found (Debian: apt-get install shellcheck; belongs in scripts/bootstrap.sh)"; exit 1
  fi
  sd_log "ansible-test sanity --venv --python $SD_TEST_PYTHON $*"
  run_at sanity --venv --python "$SD_TEST_PYTHON" --color no "$@"
  # compile and import are the only sanity tests that depend on the Python version (modules: tests/config.yml
  # python_requires; other plugins: controller Pythons). Repeat just those for the other interpreters found here.
  if [ "${#extra_versions[@]}" -gt 0 ] && [ $# -eq 0 ]; then
    sd_log "ansible-test sanity --venv --test compile --test import (also Python ${extra_versions[*]})"
    run_at sanity --venv --color no --test compile --test import
  elif [ $# -eq 0 ]; then
    sd_log "compile/import ran on Python $SD_TEST_PYTHON only: no other supported interpreter found"
  fi
}

run_units() {
  if [ -z "$(find "$AT_COPY/tests/unit" -name 'test_*.py' -print -quit 2>/dev/null)" ]; then
    sd_log "units: no tests/unit/**/test_*.py yet, nothing to run"
    return 0
  fi
  sd_log "ansible-test units --venv --python $SD_TEST_PYTHON --requirements $*"
  run_at units --venv --python "$SD_TEST_PYTHON" --requirements --color no "$@"
}

start=$SECONDS
case "$what" in
  sanity) run_sanity "$@" ;;
  units)  run_units "$@" ;;
  all)    [ $# -eq 0 ] || { sd_log "'all' takes no extra ansible-test arguments"; exit 2; }
          run_sanity; run_units ;;
esac
sd_log "ansible-test $what: OK in $((SECONDS - start))s"
