# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of shadowdesk.vdi.forecast (documentation: plugins/modules/forecast.py).

Controller only: validates the arguments and runs one forecast round (``_engine/forecast_round.py``: reads the
history store, fits/reuses one Prophet model per user in a process pool or on a Dask cluster, attaches the arrival
profiles, writes ``<data_dir>/forecasts/forecasts-<generated>.json`` and ``latest.json``).
"""

from __future__ import annotations

import datetime as _dt
import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.forecast_round import forecast_round
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import default_data_dir
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._argspecs import (
    FIT_ENGINE_ARGS, HISTORY_STORE_ARGS, store_options,
)
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._controller_action import ControllerAction

ARGUMENT_SPEC = dict(
    data_dir=dict(type="path"),
    now=dict(type="str"),
    horizon_hours=dict(type="int", default=48),
    slot_minutes=dict(type="int", default=15, choices=[5, 10, 15, 20, 30, 60]),
    users=dict(type="list", elements="str"),
    country=dict(type="str"),
    options=dict(type="dict", default={}),
    **FIT_ENGINE_ARGS,
    **HISTORY_STORE_ARGS
)


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def work(self, args):
        data_dir = os.path.expanduser(args["data_dir"] or default_data_dir())
        now = _time.to_utc(args["now"], "now") if args["now"] else _dt.datetime.now(_dt.timezone.utc)
        opts = dict(args["options"] or {})
        opts.update(horizon_hours=args["horizon_hours"], slot_minutes=args["slot_minutes"])
        if args["country"]:
            opts["country"] = args["country"]
        result = forecast_round(data_dir, now, users=args["users"], options=opts, engine=args["engine"],
                                workers=args["workers"], scheduler_address=args["scheduler_address"],
                                check_mode=self._task.check_mode, store_options=store_options(args))
        for err in result["errors"]:
            self._display.warning("forecast of %s failed: %s" % (err["user"], err["error"]))
        return result
