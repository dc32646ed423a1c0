"""The execution environment: ansible-builder makes a build context from meta/execution-environment.yml, and its
introspection finds the collection's requirements in the installed tarball (the image build itself needs a
registry, so it is not run here)."""

import os
import pathlib
import subprocess
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
# a clean environment: the development symlink in .build must not count as "already installed"
ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ANSIBLE_COLLECTIONS_PATH")}


def run(*args, cwd=ROOT):
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=ENV, capture_output=True, text=True, check=False,
                          timeout=600)
    assert proc.returncode == 0, "%s failed:\n%s\n%s" % (args, proc.stdout, proc.stderr)
    return proc.stdout


def requirement_lines(path):
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_build_context_and_introspected_requirements(tmp_path):
    output = ROOT / ".build" / "ee"   # where meta/execution-environment.yml takes the collection from
    output.mkdir(parents=True, exist_ok=True)
    for old in output.glob("shadowdesk-vdi-*.tar.gz"):
        old.unlink()
    run(BIN / "ansible-galaxy", "collection", "build", ROOT, "--output-path", output)
    (tarball,) = output.glob("shadowdesk-vdi-*.tar.gz")

    context = tmp_path / "context"
    run(BIN / "ansible-builder", "create", "-f", ROOT / "meta" / "execution-environment.yml", "-c", context)
    dockerfile = (context / "Dockerfile").read_text()
    assert 'EE_BASE_IMAGE="quay.io/centos/centos:stream9"' in dockerfile
    assert "ansible-galaxy collection install" in dockerfile and "introspect.py introspect" in dockerfile
    assert "ENV SHADOWDESK_DATA_DIR=/runner/shadowdesk" in dockerfile
    (copied,) = (context / "_build" / "collection").glob("shadowdesk-vdi-*.tar.gz")
    assert copied.read_bytes() == tarball.read_bytes()
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert galaxy["collections"] == [{"name": "/build/shadowdesk-vdi.tar.gz", "type": "file"}]
    assert "mv /build/shadowdesk-vdi-*.tar.gz /build/shadowdesk-vdi.tar.gz" in dockerfile

    # inside the image, ansible-builder introspects the installed collection: its root requirement files count
    names = subprocess.run(["tar", "-tzf", str(tarball)], capture_output=True, text=True, check=True).stdout.split()
    assert "meta/execution-environment.yml" not in names and {"requirements.txt", "bindep.txt"} <= set(names)
    collections = tmp_path / "collections"
    run(BIN / "ansible-galaxy", "collection", "install", tarball, "-p", collections)
    found = yaml.safe_load(run(BIN / "ansible-builder", "introspect", "--sanitize", collections))
    python = {line.split("#")[0].strip() for line in found["python"]}
    system = {line.split("#")[0].strip() for line in found["system"]}
    wanted = [r for r in requirement_lines(ROOT / "requirements.txt")
              if not r.lower().startswith(("ansible-core", "pyyaml"))]   # ansible-builder provides these itself
    assert set(wanted) <= python and "libvirt-python>=9.0,<13" in python and "psycopg[binary]>=3.1,<4" in python
    assert set(requirement_lines(ROOT / "bindep.txt")) <= system
