"""The same pure fit function on a real Dask LocalCluster gives the process pool's result."""

import datetime as dt
import os
import pathlib

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import executors
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import forecast as fc

from integration.test_forecast import NOW, workdays

pytest.importorskip("prophet")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.prophet
COLLECTIONS = str(pathlib.Path(__file__).resolve().parents[2] / ".build" / "collections")


def tasks():
    hist = {"a": workdays("a", 4, 9.0, 8.0, 60, 11), "b": workdays("b", 4, 10.0, 6.0, -240, 12)}
    pool = fc.pool_profile(hist, NOW)
    return [{"user": u, "rows": r, "now": NOW, "options": {"horizon_hours": 24}, "pool": pool}
            for u, r in sorted(hist.items())]


def test_dask_threads_equals_process_pool():
    items = tasks()
    local = executors.run(fc.forecast_task, items, engine="process", workers=2)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        remote = executors.run(fc.forecast_task, items, engine="dask", scheduler_address=cluster.scheduler_address)
    assert [r["method"] for r in local] == ["prophet", "prophet"]
    for a, b in zip(local, remote):
        assert a["p"] == pytest.approx(b["p"], abs=1e-3)
        assert a["history"] == b["history"]


def test_worker_processes_import_the_fit_function_by_name(monkeypatch):
    """Separate worker processes unpickle forecast_task by its full name from .build/collections."""
    monkeypatch.setenv("PYTHONPATH", COLLECTIONS + os.pathsep + os.environ.get("PYTHONPATH", ""))
    items = tasks()[:1]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            name = client.run(lambda: __import__(
                "ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.forecast",
                fromlist=["forecast_task"]).forecast_task.__module__)
            assert list(name.values()) == [fc.forecast_task.__module__]
        remote = executors.run(fc.forecast_task, items, engine="dask", scheduler_address=cluster.scheduler_address)
    assert remote[0]["method"] == "prophet"
    assert remote[0]["p"] == pytest.approx(fc.forecast_task(items[0])["p"], abs=1e-3)
    assert dt.datetime.fromisoformat(remote[0]["start"][:-1]).hour == 0
