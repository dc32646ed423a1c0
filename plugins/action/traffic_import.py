# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of shadowdesk.vdi.traffic_import (documentation: plugins/modules/traffic_import.py).

Controller-side, like history_import: the flow export is gathered on the controller and the store lives there.
The flows are anonymised while they are read (``_decisions/flow_aggregate.py``); only the hourly aggregates reach the store,
in one transaction (rolled back in check mode, so the report is exact). The import's identity is the file's
digest: importing the same export again adds nothing.
"""

from __future__ import annotations

import gzip
import hashlib

from ansible.errors import AnsibleActionFail, AnsibleError

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import flow_aggregate
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import flows
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._argspecs import HISTORY_STORE_ARGS, store_options
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._controller_action import ControllerAction

ARGUMENT_SPEC = dict(
    data_dir=dict(type="path"),
    src=dict(type="path"),
    aggregates=dict(type="list", elements="dict"),
    source=dict(type="str"),
    format=dict(type="str", choices=["csv", "json"]),
    usage_classes=dict(type="dict"),
    **dict(HISTORY_STORE_ARGS, **flow_aggregate.FLOW_CLASS_ARGS)
)


def read_text(path):
    """The export's text (gzip read transparently) and its digest, the import's identity."""
    with open(path, "rb") as handle:
        raw = handle.read()
    digest = hashlib.sha256(raw).hexdigest()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InvalidInput("%s is not a readable gzip file: %s" % (path, exc)) from None
    try:
        return raw.decode("utf-8"), digest
    except UnicodeDecodeError as exc:
        raise InvalidInput("%s is not UTF-8 text (%s); export the flows as CSV or JSON" % (path, exc)) from None


AGGREGATE_KEYS = {"hour", "usage_class", "app_class", "destination", "bytes", "packets", "flows", "connections"}


def sampled_rows(rows):
    """Rows of ``traffic_sample`` (anonymous already); a row with any other field is refused, so nothing that
    could identify a desktop is ever stored by mistake."""
    for index, row in enumerate(rows):
        extra = set(row) - AGGREGATE_KEYS
        if extra:
            raise InvalidInput("aggregates[%d] has fields an anonymous aggregate does not have: %s"
                               % (index, ", ".join(sorted(extra))))
    return rows


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC
    VALIDATION = {"required_one_of": [("src", "aggregates")], "mutually_exclusive": [("src", "aggregates")],
                  "required_by": {"aggregates": ("source",)}}

    def work(self, args):
        if args["aggregates"] is not None:
            return self._store(args, sampled_rows(args["aggregates"]), {"records": None}, args["source"])
        if not args["usage_classes"]:
            raise AnsibleActionFail("usage_classes is required with src")
        try:
            src = self._find_needle("files", args["src"])
        except AnsibleError:
            raise AnsibleActionFail("src %s not found on the controller" % args["src"]) from None
        classifier = flow_aggregate.classifier_from(args)
        text, digest = read_text(src)
        records = flows.read_records(text, fmt=args["format"], source=args["src"])
        rows, anonymised = flow_aggregate.aggregate(records, classifier)
        return self._store(args, rows, anonymised, "flows:" + digest[:32])

    def _store(self, args, rows, anonymised, source):
        check = self._task.check_mode
        store = HistoryStore.for_data_dir(args["data_dir"], read_only=check, **store_options(args))
        try:
            stored = store.add_traffic(rows, source, dry_run=check).to_dict()
            location = store.location
        finally:
            store.close()
        result = {
            "changed": stored["added"] > 0,
            "report": dict(anonymised, rows=len(rows), added=stored["added"], duplicates=stored["duplicates"]),
            "added": stored["added"],
            "db": location,
            "msg": "%s: %d hourly rows added, %d already stored" % (source, stored["added"], stored["duplicates"]),
        }
        if anonymised.get("records") is not None:
            result["msg"] = "flows: read %d, used %d, suppressed %d classes (k=%d), %d hourly rows added, %d already " \
                            "stored" % (anonymised["records"], anonymised["used"], anonymised["suppressed_classes"],
                                        anonymised["k"], stored["added"], stored["duplicates"])
        return result
