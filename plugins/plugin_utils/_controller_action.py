# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the base of the collection's controller-side action plugins (history, forecasts, plans, backtest).

They run engine code on the controller instead of shipping a module to a host (Prophet and the history store live
there). This is the one place that validates their arguments, turns Ansible's tagged values into plain JSON types
for the engine, and turns a ``ShadowDeskError`` or an ``OSError`` (unwritable data directory, full disk) into a
clear task failure without a traceback.
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.action import ActionBase

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import ShadowDeskError


class ControllerAction(ActionBase):
    """Subclasses set ``ARGUMENT_SPEC`` (and optionally ``VALIDATION``) and implement ``work(args)``."""

    TRANSFERS_FILES = False
    _requires_connection = False
    _supports_check_mode = True
    _supports_async = False

    ARGUMENT_SPEC = {}
    VALIDATION = {}  # extra validate_argument_spec keywords, e.g. required_if

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        dummy, args = self.validate_argument_spec(argument_spec=self.ARGUMENT_SPEC, **self.VALIDATION)
        args = json.loads(json.dumps(args, default=to_native))  # tagged/lazy values -> plain JSON types
        try:
            result.update(self.work(args))
        except ShadowDeskError as exc:
            raise AnsibleActionFail(str(exc), result=dict(exc.details)) from None
        except OSError as exc:  # the controller's file system: say which file and why, not "unhandled exception"
            raise AnsibleActionFail(os_error_message(exc), result={"path": exc.filename}) from None
        return result

    def work(self, args):
        """Do the task's work; return the result dict (``changed`` and return values)."""
        raise NotImplementedError


def os_error_message(exc):
    """``Cannot write <path>: <reason>`` for an OSError from the data directory."""
    reason = exc.strerror or str(exc) or exc.__class__.__name__
    if exc.filename is None:
        return "File system error on the controller: %s" % reason
    return "Cannot use %s on the controller: %s (check the data_dir and free space)" % (exc.filename, reason)
