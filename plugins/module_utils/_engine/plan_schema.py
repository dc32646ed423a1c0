# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the JSON Schema of the plan file, and reading/writing plan files (JSON or YAML by extension).

Plans are validated when written and when read: a corrupted or hand-edited plan never reaches the apply playbook.
``jsonschema`` (and PyYAML for ``.yml``/``.yaml``) are imported through ``_deps``.
"""

from __future__ import annotations

import json
import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _deps
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import write_text_atomic
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"}
NULLABLE_TIME = {"anyOf": [TIME, {"type": "null"}]}
COUNT = {"type": "integer", "minimum": 0}
STAGE = {
    "type": "object",
    "required": ["vcpus", "memory_mib"],
    "additionalProperties": False,
    "properties": {
        "vcpus": {"type": "integer", "minimum": 1},
        "memory_mib": {"type": "integer", "minimum": 128},
        "cpu_limit": {"type": ["number", "null"], "minimum": 0},
        "net": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["rate_kib_s"], "additionalProperties": False,
            "properties": {"rate_kib_s": COUNT}}},
        "disk_io": {"type": "object", "additionalProperties": {
            "type": "object", "additionalProperties": False,
            "properties": {"total_iops": COUNT, "total_bytes_sec": COUNT}}},
        "gpu": {"type": ["array", "null"], "items": {"type": "string"}},
    },
}
STEP = {
    "type": "object",
    "required": ["at", "state", "stage"],
    "additionalProperties": False,
    "properties": {
        "at": TIME,
        "state": {"enum": ["running", "paused", "saved"]},
        "stage": {"enum": ["shadow", "warm", "full"]},
        "reason": {"type": "string"},
    },
}
USER = {
    "type": "object",
    "required": ["desktop", "node", "method", "predicted_login", "lead_minutes", "stages", "steps"],
    "additionalProperties": False,
    "properties": {
        "desktop": {"type": "string", "minLength": 1},
        "node": {"type": ["string", "null"]},
        "method": {"enum": ["prophet", "fallback", "none"]},
        "conservative": {"type": "boolean"},
        "reason": {"type": "string"},
        "predicted_login": NULLABLE_TIME,
        "lead_minutes": {"type": ["number", "null"], "minimum": 0},
        # why the first warm window is as wide as it is (arrival policy; null for the occupancy policy)
        "arrival": {"type": ["object", "null"], "required": ["explanation"], "properties": {
            "explanation": {"type": "string"},
            "window_minutes": {"type": "number", "minimum": 0},
            "before_login_minutes": {"type": "number", "minimum": 0},
            "come_probability": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            "samples": {"type": ["integer", "null"], "minimum": 0},
            "spread_minutes": {"type": ["number", "null"], "minimum": 0},
            "bandwidth_minutes": {"type": ["number", "null"], "minimum": 0},
            "pool_weight": {"type": ["number", "null"], "minimum": 0, "maximum": 1}}},
        "stages": {"type": "object", "additionalProperties": STAGE,
                   "propertyNames": {"enum": ["shadow", "warm", "full"]}},
        "steps": {"type": "array", "items": STEP},
        "sessions": {"type": "array", "items": {
            "type": "object", "required": ["wake", "login", "release"], "additionalProperties": False,
            "properties": {"wake": TIME, "login": TIME, "release": TIME}}},
        "cost": {"type": "number", "minimum": 0},
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
    # A user with steps must have every stage its steps name, and a node to run on.
    "if": {"properties": {"steps": {"minItems": 1}}},
    "then": {"properties": {"node": {"type": "string"},
                            "stages": {"required": ["shadow", "warm", "full"]}}},
}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://shadowdesk.invalid/schemas/plan-v1.json",
    "title": "ShadowDesk allocation plan, version 1",
    "type": "object",
    "required": ["version", "generated_at", "window", "risk", "users"],
    "additionalProperties": False,
    "properties": {
        "version": {"const": 1},
        "generated_at": TIME,
        "window": {"type": "object", "required": ["start", "end"], "additionalProperties": False,
                   "properties": {"start": TIME, "end": TIME}},
        "risk": {"type": "number", "minimum": 0, "maximum": 1},
        "policy": {"type": "object"},
        "total_cost": {"type": "number", "minimum": 0},
        "users": {"type": "object", "additionalProperties": USER},
        "unplanned": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def validate_plan(plan, source="plan"):
    """Raise InvalidInput listing the first schema errors (with their JSON path) when ``plan`` is invalid."""
    jsonschema = _deps.require("jsonschema")
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(plan), key=lambda e: list(e.absolute_path))
    if errors:
        lines = ["%s: %s" % ("/".join(str(p) for p in e.absolute_path) or "(top)", e.message) for e in errors[:5]]
        raise InvalidInput("%s does not match the plan schema (version 1): %s%s"
                           % (source, "; ".join(lines), " (and %d more)" % (len(errors) - 5) if len(errors) > 5
                              else ""), errors=lines)
    return plan


def plan_format(path):
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json":
        return "json"
    if ext in (".yml", ".yaml"):
        return "yaml"
    raise InvalidInput("plan file %s must end in .json, .yml or .yaml" % path)


def dumps(plan, fmt):
    if fmt == "yaml":
        yaml = _deps.require("yaml")
        return yaml.safe_dump(plan, sort_keys=True, default_flow_style=False)
    return json.dumps(plan, indent=2, sort_keys=True) + "\n"


def loads(text, fmt, source="plan"):
    """Parse and validate a plan's text."""
    try:
        if fmt == "yaml":
            data = _deps.require("yaml").safe_load(text)
        else:
            data = json.loads(text)
    except ValueError as exc:   # json.JSONDecodeError and yaml.YAMLError's parse errors
        raise InvalidInput("%s is not valid %s: %s" % (source, fmt.upper(), exc)) from None
    except Exception as exc:  # yaml.YAMLError does not derive from ValueError
        if type(exc).__module__.startswith("yaml"):
            raise InvalidInput("%s is not valid YAML: %s" % (source, exc)) from None
        raise
    return validate_plan(data, source)


def read_plan(path):
    """A validated plan from ``path`` (format by extension)."""
    fmt = plan_format(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise InvalidInput("cannot read plan file %s: %s" % (path, exc.strerror or exc), path=path) from None
    return loads(text, fmt, "plan file %s" % path)


def write_plan(plan, path):
    """Validate, then atomically write ``plan`` to ``path`` (format by extension)."""
    validate_plan(plan, "the new plan")
    write_text_atomic(path, dumps(plan, plan_format(path)))
