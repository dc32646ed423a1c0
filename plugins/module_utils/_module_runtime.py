# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the edge between AnsibleModule and the backends.

Every hypervisor module's ``main()`` is: build the argspec, ``run_with_backend(module, work)``. This is the one
place that opens/closes the backend and turns ``ShadowDeskError`` into ``fail_json`` so no traceback reaches the
user, whatever backend or decision raised it.
"""

from __future__ import annotations

import time
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.shadowdesk.vdi.plugins.module_utils._argspec import (
    CONNECTION_REQUIRED_IF, connection_argument_spec,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.select import select_backend
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import MissingDependency, ShadowDeskError


def build_module(argument_spec, **kwargs):
    """An AnsibleModule with the connection options added and check mode on."""
    required_if = list(CONNECTION_REQUIRED_IF) + list(kwargs.pop("required_if", []))
    return AnsibleModule(
        argument_spec=connection_argument_spec(**argument_spec),
        supports_check_mode=True,
        required_if=required_if,
        **kwargs
    )


def run_with_backend(module, work):
    """Call ``work(backend)`` and exit with its result dict; every ShadowDeskError becomes ``fail_json``."""
    backend = None
    try:
        backend = select_backend(module.params["backend"], module.params)
        result = work(backend)
    except MissingDependency as exc:
        module.fail_json(msg=missing_required_lib(exc.details.get("library", "?")), error=str(exc))
    except ShadowDeskError as exc:
        # A failure that changed something first says so (details["changed"], set where the change is known).
        details = {k: v for k, v in exc.details.items() if k not in ("msg", "failed", "changed")}
        module.fail_json(msg=str(exc), error_type=type(exc).__name__, changed=bool(exc.details.get("changed")),
                         **details)
    except Exception as exc:  # pylint: disable=broad-except
        # Last line of defence: a bug must still end in a clear message, with the traceback only under -vvv.
        module.fail_json(msg="Unexpected error (%s: %s). This is a bug in shadowdesk.vdi; please report it."
                         % (type(exc).__name__, exc), exception=traceback.format_exc())
    finally:
        if backend is not None:
            try:
                backend.close()
            except ShadowDeskError:
                pass  # closing a dead connection must not hide the real result
    module.exit_json(**result)


class StepTimer:
    """Measures each step (seconds) so results carry the real wake/resize times that plans use as lead time."""

    def __init__(self):
        self.timings = {}

    def run(self, name, fn, *args, **kwargs):
        started = time.monotonic()
        try:
            return fn(*args, **kwargs)
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.monotonic() - started, 4)
