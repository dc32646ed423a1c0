# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over network plans: ``network_reservations``."""

from __future__ import annotations

# Documentation: plugins/filter/network_reservations.yml (ansible-doc -t filter shadowdesk.vdi.network_reservations).

import datetime as _dt
import json

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.reservations import reservations_at
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import ShadowDeskError


def network_reservations(plan, now=None, max_mbit=None):
    try:
        if isinstance(plan, (str, bytes)):
            plan = json.loads(to_native(plan))
        if not isinstance(plan, dict) or not isinstance(plan.get("reservations", []), list):
            raise AnsibleFilterError("network_reservations expects a network plan (a dict with reservations, or its "
                                     "JSON text), got %s" % type(plan).__name__)
        plan = json.loads(json.dumps(plan, default=to_native))
        if now is None or now == "":
            now = _dt.datetime.now(_dt.timezone.utc)
        elif not isinstance(now, _dt.datetime):
            now = to_native(now)
        return reservations_at(plan, now, None if max_mbit in (None, "") else float(max_mbit))
    except ShadowDeskError as exc:
        raise AnsibleFilterError("network_reservations: %s" % exc) from None
    except (TypeError, ValueError, KeyError) as exc:
        raise AnsibleFilterError("network_reservations: malformed network plan (%s)" % to_native(exc)) from None


class FilterModule:
    def filters(self):
        return {"network_reservations": network_reservations}
