# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: run one pure function over many items, locally or on a Dask cluster.

``run(fn, items, engine='process'|'dask'|'serial', workers=N, scheduler_address=None)`` returns the results in the
order of ``items``. ``fn`` must be a module-level function (picklable by its full name, e.g.
``ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.forecast.forecast_task``) and its items plain
data. The process pool is the default; ``dask`` connects to ``scheduler_address`` (or starts an in-process
``LocalCluster`` when none is given). Dask workers must be able to import the collection (``.build/collections``
or an installed collection on their ``PYTHONPATH``).
"""

from __future__ import annotations

import multiprocessing
import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils._deps import require
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

ENGINES = ("process", "dask", "serial")


def default_workers():
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not Linux
        return max(os.cpu_count() or 1, 1)


def run(fn, items, engine="process", workers=None, scheduler_address=None):
    items = list(items)
    if engine not in ENGINES:
        raise InvalidInput("engine must be one of %s, got %r" % (", ".join(ENGINES), engine))
    if not items:
        return []
    workers = int(workers or default_workers())
    if engine == "serial" or (engine == "process" and (workers == 1 or len(items) == 1)):
        return [fn(x) for x in items]
    if engine == "process":
        from concurrent.futures import ProcessPoolExecutor
        # fork is cheap and keeps the parent's imports (Prophet/pandas are slow to import); fall back to the default.
        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        chunk = max(1, min(32, len(items) // (workers * 4) or 1))
        with ProcessPoolExecutor(max_workers=min(workers, len(items)), mp_context=ctx) as pool:
            return list(pool.map(fn, items, chunksize=chunk))
    distributed = require("distributed")
    if scheduler_address:
        client = distributed.Client(scheduler_address, set_as_default=False)
        cluster = None
    else:
        cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                           dashboard_address=None)
        client = distributed.Client(cluster, set_as_default=False)
    try:
        futures = client.map(fn, items, pure=False)
        return client.gather(futures)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
