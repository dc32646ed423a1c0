# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import flow_aggregate
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import flows
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

CLASSES = {"engineering": ["198.18.1.0/24"], "sales": ["198.18.2.0/24"]}


def _flow(src, dst, port=443, proto="tcp", start="2026-11-02T09:10:00Z", end="2026-11-02T09:20:00Z", nbytes=1000):
    return {"start": start, "end": end, "src": src, "dst": dst, "dst_port": port, "proto": proto,
            "bytes": nbytes, "packets": 10, "user": "alice-%s" % src, "desktop": "desk-%s" % src}


def test_no_user_desktop_or_source_address_in_the_rows_and_report():
    records = [_flow("198.18.1.%d" % i, "203.0.113.%d" % i) for i in range(1, 8)]
    rows, report = flow_aggregate.aggregate(records, flow_aggregate.FlowClassifier(CLASSES, k=5))
    text = json.dumps(rows, default=str) + json.dumps(report)
    assert rows and report["used"] == 7
    for i in range(1, 8):
        assert "198.18.1.%d" % i not in text and "alice" not in text and "desk-" not in text
        assert "203.0.113.%d\"" % i not in text
    assert {r["destination"] for r in rows} == {"203.0.113.0/24"}
    assert {r["usage_class"] for r in rows} == {"engineering"}
    assert set(rows[0]) == {"hour", "usage_class", "app_class", "destination", "bytes", "packets", "flows",
                            "connections"}


def test_classes_from_fewer_than_k_desktops_are_suppressed():
    many = [_flow("198.18.1.%d" % i, "203.0.113.9") for i in range(1, 6)]
    few = [_flow("198.18.2.%d" % i, "192.0.2.1", port=22) for i in range(1, 5)] * 3
    rows, report = flow_aggregate.aggregate(many + few, flow_aggregate.FlowClassifier(CLASSES, k=5))
    assert {(r["usage_class"], r["app_class"]) for r in rows} == {("engineering", "web")}
    assert report["suppressed_classes"] == 1 and report["suppressed_flows"] == 12
    rows, _report = flow_aggregate.aggregate(many + few, flow_aggregate.FlowClassifier(CLASSES, k=4))
    assert {(r["usage_class"], r["app_class"]) for r in rows} == {("engineering", "web"), ("sales", "ssh")}


def test_flow_spanning_hours_is_split_by_overlap_and_named_service_wins():
    cls = flow_aggregate.FlowClassifier(CLASSES, services={"office": ["52.96.0.0/14"]}, k=1)
    flow = _flow("198.18.1.1", "52.97.1.1", start="2026-11-02T09:30:00Z", end="2026-11-02T10:30:00Z", nbytes=3600)
    rows, _report = flow_aggregate.aggregate([flow], cls)
    assert [(r["hour"].hour, r["bytes"], r["connections"], r["flows"]) for r in rows] == [
        (9, 1800, 0.5, 1), (10, 1800, 0.5, 0)]
    assert rows[0]["destination"] == "office"


def test_ipfix_names_epoch_milliseconds_and_custom_app_classes():
    rec = {"flowStartMilliseconds": 1793610000000, "flowEndMilliseconds": 1793610060000,
           "sourceIPv4Address": "198.18.1.1", "destinationIPv4Address": "198.51.100.1",
           "destinationTransportPort": 8443, "protocolIdentifier": 6, "octetDeltaCount": 500,
           "packetDeltaCount": 5}
    cls = flow_aggregate.FlowClassifier(CLASSES, app_classes={"alt_web": ["tcp/8000-8999"]}, k=1)
    rows, _report = flow_aggregate.aggregate([rec], cls)
    assert rows[0]["app_class"] == "alt_web" and rows[0]["bytes"] == 500


def test_csv_and_json_readers_and_bad_records_counted():
    csv_text = "start,end,src,dst,dst_port,proto,bytes,packets\n" \
               "2026-11-02T09:00:00Z,2026-11-02T09:01:00Z,198.18.1.1,198.51.100.1,443,tcp,10,1\n" \
               "yesterday,2026-11-02T09:01:00Z,198.18.1.1,198.51.100.1,443,tcp,10,1\n" \
               "2026-11-02T09:00:00Z,2026-11-02T09:01:00Z,10.9.9.9,198.51.100.1,443,tcp,10,1\n"
    records = flows.read_records(csv_text)
    rows, report = flow_aggregate.aggregate(records, flow_aggregate.FlowClassifier(CLASSES, k=1))
    assert report["used"] == 1 and report["records"] == 3
    assert set(report["skipped"]) == {"malformed field (start is not a time)", "source is not in any usage class"}
    assert flows.read_records(json.dumps({"flows": records})) == records
    ndjson = "\n".join(json.dumps(r) for r in records)
    assert flows.read_records(ndjson) == records


@pytest.mark.parametrize("text,match", [
    ("", "empty"), ("a,b,c\n1,2,3\n", "no column for start"), ("{not json", "not JSON"), ("[1, 2]", "flow objects")])
def test_malformed_flow_files_fail_clearly(text, match):
    with pytest.raises(InvalidInput, match=match):
        flows.read_records(text, source="flows.csv")


@pytest.mark.parametrize("kwargs", [{"usage_classes": {}}, {"usage_classes": {"a": ["nope"]}},
                                    {"usage_classes": CLASSES, "app_classes": {"x": ["tcp/99999"]}},
                                    {"usage_classes": CLASSES, "k": 0}])
def test_bad_classifier_config(kwargs):
    with pytest.raises(InvalidInput):
        flow_aggregate.FlowClassifier(**kwargs)
