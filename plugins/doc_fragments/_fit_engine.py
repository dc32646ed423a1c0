# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE doc fragment: where Prophet fits run. Must match FIT_ENGINE_ARGS in plugin_utils/_argspecs.py."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  engine:
    description:
      - Where the Prophet fits run. V(process) is a local process pool, V(dask) a Dask cluster, V(serial) this
        process (for debugging).
    type: str
    default: process
    choices: [process, dask, serial]
  workers:
    description: Local processes (default the CPUs available), or local Dask workers without O(scheduler_address).
    type: int
  scheduler_address:
    description:
      - Dask scheduler (for example C(tcp://10.0.0.5:8786)) with O(engine=dask). Its workers must be able to
        import this collection.
    type: str
"""
