# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: publish allocation plans under ``<data_dir>/plans`` and render their human summary.

Layout: ``plan-<generated>.<ext>`` (one per change), ``plan-<generated>.summary.md`` next to it, and
``latest.<ext>`` / ``latest.summary.md``, the files the apply playbook reads. ``latest`` is written last, each
file atomically, so a reader sees the old plan or the new one, never half a file. A plan equal to the latest one
(``generated_at`` aside) is not written again.
"""

from __future__ import annotations

import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _deps
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import plan_schema
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.plans import comparable
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import write_text_atomic

EXTENSIONS = {"json": ".json", "yaml": ".yml"}


def plans_dir(data_dir):
    return os.path.join(os.path.expanduser(data_dir), "plans")


def latest_path(data_dir, fmt="json"):
    return os.path.join(plans_dir(data_dir), "latest" + EXTENSIONS[fmt])


def render_summary(plan, template_text, source="summary template"):
    jinja2 = _deps.require("jinja2")
    sandbox = _deps.require("jinja2.sandbox")
    env = sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                                       keep_trailing_newline=True, autoescape=False)
    try:
        return env.from_string(template_text).render(plan=plan)
    except jinja2.TemplateError as exc:
        raise InvalidInput("%s cannot be rendered: %s" % (source, exc)) from None


def read_latest(data_dir, fmt="json"):
    """(plan or None, warning): the latest plan; a corrupted one is reported, not trusted."""
    path = latest_path(data_dir, fmt)
    if not os.path.exists(path):
        return None, None
    try:
        return plan_schema.read_plan(path), None
    except InvalidInput as exc:
        return None, "the previous latest plan is unusable and will be replaced: %s" % exc


def publish(plan, summary, data_dir, fmt="json", check_mode=False):
    """Write the plan (unless unchanged or in check mode). Returns a result dict for the action plugin."""
    if fmt not in EXTENSIONS:
        raise InvalidInput("format must be one of %s, got %r" % (", ".join(sorted(EXTENSIONS)), fmt))
    plan_schema.validate_plan(plan, "the new plan")
    previous, warning = read_latest(data_dir, fmt)
    changed = previous is None or comparable(previous) != comparable(plan)
    stamp = plan["generated_at"].replace("-", "").replace(":", "")
    directory = plans_dir(data_dir)
    path = os.path.join(directory, "plan-%s%s" % (stamp, EXTENSIONS[fmt]))
    latest = latest_path(data_dir, fmt)
    result = {"changed": changed, "path": path if changed else None, "latest": latest,
              "summary_path": os.path.join(directory, "latest.summary.md"), "warnings": [warning] if warning else []}
    if changed and not check_mode:
        plan_schema.write_plan(plan, path)
        write_text_atomic(os.path.splitext(path)[0] + ".summary.md", summary)
        write_text_atomic(result["summary_path"], summary)
        plan_schema.write_plan(plan, latest)
    return result
