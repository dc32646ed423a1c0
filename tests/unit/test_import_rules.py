"""The import rules of docs/architecture.md ("Import rules"), checked on the import graph of plugins/ and of the EDA
source plugins (extensions/eda/plugins/).

Every ``import``/``from`` statement (also inside functions) and every ``_deps.require("...")`` of each file is read
with ``ast``; a rule names which imports a part may make. ``test_each_rule_catches_a_break`` breaks every rule on
purpose in a copy of the tree, so a checker that stopped seeing a rule fails too. The callback is also imported
for real in a fresh interpreter with pandas/Prophet/numpy made unimportable.
"""

import ast
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PREFIX = "ansible_collections.shadowdesk.vdi.plugins."
STDLIB = set(sys.stdlib_module_names) | {"__future__"}
HEAVY = ("pandas", "prophet", "numpy", "cmdstanpy", "dask", "distributed")


def imports_of(path, plugins=ROOT / "plugins"):
    """(line, module) for each import of ``path``; ``_deps.require("x")`` counts as importing ``x``; ``from
    <package> import <module>`` of the collection counts as importing the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            inner = part(node.module)
            if inner is not None and plugins.joinpath(*inner.split(".")).is_dir():  # from <package> import <name>
                found.extend((node.lineno, "%s.%s" % (node.module, alias.name)) for alias in node.names)
                if "." in inner:  # a package of a part (its __init__ runs), not the bare module_utils/plugin_utils
                    found.append((node.lineno, node.module))
            else:
                found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) == "require"
              and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, "<require>" + node.args[0].value))
    return found


def part(module):
    """The collection part an imported name belongs to (``module_utils._engine``...), else None."""
    if not module.startswith(PREFIX):
        return None
    return module[len(PREFIX):]


def third_party(module):
    top = module.replace("<require>", "").split(".")[0]
    return top not in STDLIB and top != "ansible_collections" and not module.startswith("<require>")


def required(module):
    return module[len("<require>"):].split(".")[0] if module.startswith("<require>") else None


def _only(allowed_parts, what):
    def rule(module):
        inner = part(module)
        if inner is None:
            return None if not third_party(module) and not module.startswith("ansible") else what
        return None if inner.startswith(allowed_parts) else what
    return rule


PURE = ("module_utils._model", "module_utils._errors", "module_utils._time", "module_utils._decisions")
ENGINE_OK = PURE + ("module_utils._engine", "module_utils._deps")


def engine_rule(module):
    inner = part(module)
    if inner is not None:
        return None if inner.startswith(ENGINE_OK) else "the engine imports only _model/_errors/_time/_decisions/_deps"
    if module.split(".")[0] == "ansible":
        return "the engine never imports ansible"
    if third_party(module):
        return "the engine imports third-party libraries only through _deps"
    return None


def backend_rule(own, other, libs):
    def rule(module):
        inner = part(module) or ""
        name = inner.rsplit(".", 1)[-1]
        if inner.startswith("module_utils._backends") and (other in name):
            return "one backend never imports the other"
        if required(module) in libs or module.split(".")[0] in libs:
            return "only the %s backend imports %s" % (other, "/".join(libs))
        return None
    return rule


def no_engine(module):
    inner = part(module) or ""
    return "modules never import _engine" if inner.startswith("module_utils._engine") else None


def action_rule(module):
    inner = part(module) or ""
    return "action plugins never import _backends" if inner.startswith("module_utils._backends") else None


def callback_rule(module):
    inner = part(module)
    if inner is not None and not inner.startswith(("module_utils._engine.store", "module_utils._model",
                                                   "module_utils._errors")):
        return "the callback imports only _engine/store and _model"
    if (required(module) or module.split(".")[0]) in HEAVY:
        return "the callback never pulls in pandas/Prophet"
    return None


def rules_for(rel):
    """The rules of a file, by its path relative to plugins/."""
    rules = []
    if rel in ("module_utils/_model.py", "module_utils/_errors.py", "module_utils/_time.py") \
            or rel.startswith("module_utils/_decisions/"):
        rules.append(_only(PURE, "_model/_errors/_time/_decisions are stdlib only"))
    if rel.startswith("module_utils/_engine/"):
        rules.append(engine_rule)
    if rel.startswith("module_utils/_backends/"):
        name = rel.rsplit("/", 1)[-1]
        if "libvirt" in name:
            rules.append(backend_rule("libvirt", "proxmox", ("proxmoxer", "requests")))
            rules.append(backend_rule("libvirt", "_pve", ("proxmoxer",)))
        elif "proxmox" in name or "_pve" in name:
            rules.append(backend_rule("proxmox", "libvirt", ("libvirt",)))
        elif name in ("base.py", "__init__.py"):
            rules.append(_only(("module_utils._model", "module_utils._errors"), "base imports _model and _errors"))
    if rel.startswith("modules/"):
        rules.append(no_engine)
    if rel.startswith("action/"):
        rules.append(action_rule)
    if rel.startswith("callback/"):
        rules.append(callback_rule)
    return rules


def module_file(plugins, module):
    """The file of a collection module name (package __init__ or .py), or None."""
    inner = part(module)
    if inner is None:
        return None
    base = plugins.joinpath(*inner.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def violations(plugins):
    """Every broken rule under ``plugins`` as ``file:line: module: rule``; the callback's rule also applies to
    everything it imports, transitively."""
    out = []
    for path in sorted(plugins.rglob("*.py")):
        rel = path.relative_to(plugins).as_posix()
        for rule in rules_for(rel):
            for line, module in imports_of(path, plugins):
                broken = rule(module)
                if broken:
                    out.append("%s:%d: %s: %s" % (rel, line, module, broken))
    for callback in sorted((plugins / "callback").glob("*.py")):
        seen, todo = set(), [callback]
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            for line, module in imports_of(path, plugins):
                if (required(module) or module.split(".")[0]) in HEAVY:
                    out.append("%s:%d: %s: the callback never pulls in pandas/Prophet (via %s)" % (
                        path.relative_to(plugins).as_posix(), line, module, callback.name))
                target = module_file(plugins, module)
                if target is not None:
                    todo.append(target)
    return sorted(set(out))


def test_the_collection_keeps_its_import_rules():
    assert violations(ROOT / "plugins") == []


EDA = ROOT / "extensions" / "eda" / "plugins"


def eda_violations(eda, plugins=ROOT / "plugins"):
    """Rule 7: the EDA source plugins (controller-side, outside plugins/) never import ``_engine``."""
    out = []
    for path in sorted(eda.rglob("*.py")):
        for line, module in imports_of(path, plugins):
            if (part(module) or "").startswith("module_utils._engine"):
                out.append("%s:%d: %s: EDA sources never import _engine" % (
                    path.relative_to(eda).as_posix(), line, module))
    return out


def test_the_eda_sources_keep_their_import_rule():
    assert sorted(p.name for p in EDA.rglob("*.py") if p.name != "__init__.py") == [
        "autoscale_tick.py", "broker_webhook.py", "hypervisor_events.py"]  # a new source is checked too; this says the walk sees them
    assert eda_violations(EDA) == []


def test_the_eda_rule_catches_a_break(tmp_path):
    copy = tmp_path / "eda"
    shutil.copytree(EDA, copy)
    path = copy / "event_source" / "hypervisor_events.py"
    path.write_text(path.read_text(encoding="utf-8") + "\n\ndef _broken():\n    from ansible_collections.shadowdesk."
                    "vdi.plugins.module_utils._engine import plans\n", encoding="utf-8")
    assert {v.split(": ", 1)[0] for v in eda_violations(copy)} == {"event_source/hypervisor_events.py:%d" % (
        len(path.read_text(encoding="utf-8").splitlines()))}


BREAKS = [
    ("module_utils/_decisions/resources.py", "import yaml", "stdlib only"),
    ("module_utils/_model.py", "from ansible.module_utils.basic import AnsibleModule", "stdlib only"),
    ("module_utils/_engine/plans.py", "import ansible.errors", "never imports ansible"),
    ("module_utils/_engine/plans.py",
     "from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import base", "imports only"),
    ("module_utils/_engine/forecast.py", "from prophet import Prophet", "only through _deps"),
    ("module_utils/_backends/libvirt.py",
     "from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import proxmox", "never imports the other"),
    ("module_utils/_backends/proxmox.py", "x = _deps.require('libvirt')", "only the libvirt backend"),
    ("modules/shadow_vm.py", "from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import plans",
     "never import _engine"),
    ("action/forecast.py",
     "from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import libvirt", "never import _backends"),
    ("callback/session_recorder.py", "import pandas", "pandas/Prophet"),
    # transitively: the store (which the callback imports) asking _deps for pandas
    ("module_utils/_engine/store/sessions.py", "pd = require('pandas')", "via session_recorder.py"),
]


@pytest.mark.parametrize("rel,line,rule", BREAKS, ids=[b[0] + ":" + b[1][:30] for b in BREAKS])
def test_each_rule_catches_a_break(tmp_path, rel, line, rule):
    copy = tmp_path / "plugins"
    shutil.copytree(ROOT / "plugins", copy)
    path = copy / rel
    path.write_text(path.read_text(encoding="utf-8") + "\n\ndef _broken():\n    " + line + "\n", encoding="utf-8")
    found = violations(copy)
    assert any(v.startswith(rel) or rule in v for v in found) and any(rule in v for v in found), found


def test_the_callback_imports_without_pandas_or_prophet():
    """A real import in a fresh interpreter where the heavy libraries cannot be imported at all."""
    script = textwrap.dedent("""
        import sys
        for name in %r:
            sys.modules[name] = None  # "import name" now raises ImportError
        import ansible_collections.shadowdesk.vdi.plugins.callback.session_recorder as recorder
        import ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store as store
        assert recorder.CallbackModule and store.HistoryStore
        print(sorted(m for m in sys.modules if m.split(".")[0] in %r and sys.modules[m] is not None))
    """ % (HEAVY, HEAVY))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))  # as this process finds it
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=120,
                          env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
