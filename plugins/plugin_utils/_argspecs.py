# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: argument_spec pieces shared by the controller-side action plugins (Ansible's side of the engine).

Each piece has a doc fragment of the same options (plugins/doc_fragments/); the engine itself takes plain values.
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.executors import ENGINES

# Where Prophet fits run (doc fragment shadowdesk.vdi._fit_engine).
FIT_ENGINE_ARGS = dict(
    engine=dict(type="str", default="process", choices=list(ENGINES)),
    workers=dict(type="int"),
    scheduler_address=dict(type="str"),
)

# Which history store (doc fragment shadowdesk.vdi._history_store). The URL may carry the password: both no_log.
HISTORY_STORE_ARGS = dict(
    history_url=dict(type="str", no_log=True),
    history_password=dict(type="str", no_log=True),
)


def store_options(args):
    """The keyword arguments of ``HistoryStore.for_data_dir`` from a task's validated arguments."""
    return {"history_url": args.get("history_url"), "password": args.get("history_password")}
