"""The collection builds, installs into a fresh path, and every module's documentation renders."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent


def run(*args, cwd=None, env=None):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False,
                          timeout=600)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (args, proc.stdout, proc.stderr)
    return proc.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    run(BIN / "ansible-galaxy", "collection", "build", ROOT, "--output-path", build)
    (tarball,) = build.glob("shadowdesk-vdi-*.tar.gz")
    target = tmp_path_factory.mktemp("collections")
    # a clean environment: the development symlink in .build must not count as "already installed"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ANSIBLE_COLLECTIONS_PATH")}
    env["ANSIBLE_COLLECTIONS_PATH"] = str(target)
    run(BIN / "ansible-galaxy", "collection", "install", tarball, "-p", target, env=env)
    return tarball, target / "ansible_collections" / "shadowdesk" / "vdi", env


def test_the_tarball_ships_no_runtime_state_or_build_output(installed):
    tarball = installed[0]
    names = subprocess.run(["tar", "-tzf", str(tarball)], capture_output=True, text=True, check=True).stdout.split()
    assert "galaxy.yml" not in names and "MANIFEST.json" in names
    assert not [n for n in names if n.startswith((".build", ".venv", ".git/", "tests/output"))]
    assert not [n for n in names if n.endswith((".sqlite3", ".pyc"))]


def test_every_module_is_documented_in_the_installed_collection(installed):
    path, env = installed[1:]
    modules = sorted(p.stem for p in (path / "plugins" / "modules").glob("*.py") if not p.stem.startswith("_"))
    assert {"shadow_vm", "desktop_resources", "desktop_state", "desktop_info"} <= set(modules)
    listed = json.loads(run(BIN / "ansible-doc", "--json", "-l", "shadowdesk.vdi", env=env))
    assert {"shadowdesk.vdi.%s" % m for m in modules} <= set(listed)
    for module in modules:
        text = run(BIN / "ansible-doc", "shadowdesk.vdi.%s" % module, env=env)
        assert "EXAMPLES" in text and "RETURN VALUES" in text, module
