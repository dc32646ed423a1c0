# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connection table -> flow records of one sample: what moved since the cursor, no address in the cursor."""

from __future__ import annotations

import json

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.conntrack import parse_conntrack, sample
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

# Lines as the kernel writes them (/proc/net/nf_conntrack, accounting on), one of them without counters.
TABLE = """\
ipv4     2 tcp      6 431999 ESTABLISHED src=198.18.0.11 dst=198.19.1.1 sport=40000 dport=443 packets=10 bytes=600 \
src=198.19.1.1 dst=198.18.0.11 sport=443 dport=40000 packets=80 bytes=120000 [ASSURED] mark=0 zone=0 use=2
ipv4     2 udp      17 29 src=198.18.0.12 dst=198.19.3.1 sport=5353 dport=53 packets=1 bytes=60 [UNREPLIED] \
src=198.19.3.1 dst=198.18.0.12 sport=53 dport=5353 packets=0 bytes=0 mark=0 zone=0 use=2
ipv6     10 tcp      6 117 TIME_WAIT src=2001:db8::11 dst=2001:db8:1::1 sport=50000 dport=80 \
src=2001:db8:1::1 dst=2001:db8::11 sport=80 dport=50000 [ASSURED] mark=0 zone=0 use=2
"""


def test_entries_have_both_directions_counted():
    tcp, udp, v6 = parse_conntrack(TABLE)
    assert tcp == {"proto": "tcp", "src": "198.18.0.11", "dst": "198.19.1.1", "sport": "40000", "dport": "443",
                   "bytes": 120600, "packets": 90, "counted": True}
    assert udp["dport"] == "53" and udp["bytes"] == 60
    assert v6["src"] == "2001:db8::11" and v6["counted"] is False and v6["bytes"] == 0


def test_a_second_sample_counts_only_what_moved_and_the_cursor_holds_no_address():
    entries = parse_conntrack(TABLE)
    first, cursor = sample(entries, {}, "2026-12-07T09:05:00Z", "s" * 32)
    assert first[0]["bytes"] == 120600 and first[0]["start"] == "2026-12-07T09:00:00Z"  # 300 s at first sight
    entries[0]["bytes"] += 5000
    second, cursor2 = sample(entries, cursor, "2026-12-07T09:10:00Z", "s" * 32)
    assert [r["bytes"] for r in second] == [5000, 0, 0]
    assert second[0]["start"] == "2026-12-07T09:05:00Z" and second[0]["end"] == "2026-12-07T09:10:00Z"
    text = json.dumps(cursor2)
    for address in ("198.18.0.11", "198.19.1.1", "2001:db8", "40000"):
        assert address not in text
    other_salt = sample(entries, {}, "2026-12-07T09:10:00Z", "t" * 32)[1]
    assert set(other_salt["connections"]).isdisjoint(cursor2["connections"])  # keys are salted


def test_counters_that_went_back_are_a_new_connection():
    entries = parse_conntrack(TABLE)
    _records, cursor = sample(entries, {}, "2026-12-07T09:05:00Z", "s" * 32)
    entries[0]["bytes"] = 100
    again, _cursor = sample(entries, cursor, "2026-12-07T09:10:00Z", "s" * 32)
    assert again[0]["bytes"] == 100


@pytest.mark.parametrize("text", ["garbage line here", "ipv4 2 tcp 6 10 ESTABLISHED sport=1 dport=2"])
def test_an_unreadable_table_is_a_clear_error(text):
    with pytest.raises(InvalidInput, match="line 1"):
        parse_conntrack(text)
