"""traffic_hourly on both databases: anonymous aggregates from the flow importer in, summed series out."""

import json

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import flow_aggregate
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore


@pytest.fixture
def store(db):
    with HistoryStore(db.location()) as s:
        yield s


def _records():
    recs = []
    for i in range(1, 7):
        recs.append({"start": "2026-11-02T09:10:00Z", "end": "2026-11-02T09:20:00Z", "src": "198.18.1.%d" % i,
                     "dst": "203.0.113.%d" % i, "dst_port": 443, "proto": "tcp", "bytes": 1000, "packets": 10,
                     "user": "alice%d" % i, "desktop": "desk-alice%d" % i})
    recs.append(dict(recs[0], dst="192.0.2.1", dst_port=22))  # one desktop only: suppressed
    return recs


def test_no_user_or_desktop_reaches_the_store_and_reimport_adds_nothing(store, db):
    rows, report = flow_aggregate.aggregate(_records(), flow_aggregate.FlowClassifier({"eng": ["198.18.1.0/24"]}, k=5))
    assert report["suppressed_classes"] == 1
    assert store.add_traffic(rows, source="flows-2026-11-02.csv").added == 1
    assert store.add_traffic(rows, source="flows-2026-11-02.csv").duplicates == 1
    assert store.add_traffic(rows, source="flows-other.csv").added == 1
    got = store.traffic()
    assert got == [{"hour": got[0]["hour"], "app_class": "web", "destination": "203.0.113.0/24", "bytes": 12000,
                    "connections": pytest.approx(2 * 6 * 600 / 3600)}]
    columns = set(store.columns("traffic_hourly"))
    assert not {"user", "desktop", "src", "source_address"} & columns
    dump = json.dumps(store._query("SELECT * FROM traffic_hourly"), default=str)  # pylint: disable=protected-access
    for i in range(1, 7):
        assert "198.18.1.%d" % i not in dump and "alice%d" % i not in dump and "desk-alice" not in dump
        assert "203.0.113.%d'" % i not in dump and '203.0.113.%d"' % i not in dump
    assert "192.0.2" not in dump


def test_bad_rows_are_counted(store):
    report = store.add_traffic([{"hour": "not a time", "usage_class": "a", "app_class": "b", "destination": "c",
                                 "bytes": 1}, {"hour": "2026-11-02T09:00:00Z"}], source="x")
    assert report.added == 0 and report.rejected == {"bad_row": 2}
    with pytest.raises(ValueError):
        store.add_traffic([], source="")
