# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import ipaddress
import os

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import blocklist
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

NETSET = os.path.join(os.path.dirname(__file__), *[".."] * 5, "..", "shared", "data", "network",
                      "firehol_level1_2021-06-28.netset")


def test_parses_netset_with_comments_and_single_addresses():
    nets = blocklist.parse_netset("# header\n\n1.2.3.0/24\n5.6.7.8  # trailing\n2001:db8::/32\n")
    assert [str(n) for n in nets] == ["1.2.3.0/24", "5.6.7.8/32", "2001:db8::/32"]


@pytest.mark.parametrize("text,line", [("1.2.3.0/24\nnot-an-ip\n", 2), ("1.2.3.4/24\n", 1), ("300.1.1.1\n", 1)])
def test_malformed_netset_names_the_line(text, line):
    with pytest.raises(InvalidInput) as err:
        blocklist.parse_netset(text, "bad.netset")
    assert "bad.netset line %d" % line in str(err.value)


def test_empty_netset_is_refused():
    with pytest.raises(InvalidInput, match="no address"):
        blocklist.parse_netset("# only a comment\n")


def test_private_ranges_exempt_and_split_out_of_wider_entries():
    nets = blocklist.parse_netset("10.0.0.0/8\n8.0.0.0/6\n198.51.100.7\n")
    entries = blocklist.block_entries([("blocklist:test", nets)])
    cidrs = [ipaddress.ip_network(e["cidr"]) for e in entries]
    assert not any(c.overlaps(ipaddress.ip_network("10.0.0.0/8")) for c in cidrs)
    assert blocklist.is_blocked("9.1.2.3", entries) == "blocklist:test"
    assert blocklist.is_blocked("10.1.2.3", entries) is None
    assert blocklist.is_blocked("198.51.100.7", entries) == "blocklist:test"


def test_allow_list_wins_and_first_reason_is_kept():
    entries = blocklist.block_entries(
        [("blocklist:a", [ipaddress.ip_network("203.0.113.0/24")]),
         ("forecast:far off", [ipaddress.ip_network("203.0.113.0/25"), ipaddress.ip_network("192.0.2.0/24")])],
        allow=["203.0.113.128/26"])
    assert blocklist.is_blocked("203.0.113.5", entries) == "blocklist:a"
    assert blocklist.is_blocked("203.0.113.130", entries) is None
    assert blocklist.is_blocked("203.0.113.200", entries) == "blocklist:a"
    assert blocklist.is_blocked("192.0.2.9", entries) == "forecast:far off"


def test_exemption_can_be_switched_off():
    nets = [ipaddress.ip_network("10.0.0.0/8")]
    assert blocklist.block_entries([("r", nets)], exempt=()) == [{"cidr": "10.0.0.0/8", "reason": "r"}]


@pytest.mark.skipif(not os.path.exists(NETSET), reason="shared data not beside the checkout")
def test_real_firehol_list_keeps_public_entries_and_drops_private():
    with open(NETSET) as fh:
        nets = blocklist.parse_netset(fh.read(), "firehol_level1")
    assert len(nets) == 2892
    entries = blocklist.block_entries([("blocklist:firehol_level1", nets)])
    assert blocklist.is_blocked("192.168.1.10", entries) is None
    assert blocklist.is_blocked("127.0.0.1", entries) is None
    assert blocklist.is_blocked("1.10.16.1", entries) == "blocklist:firehol_level1"
    assert 2800 < len(entries) < 2892


def test_far_off_prediction():
    flagged = blocklist.far_off_prediction({"a": 100.0, "b": 1000.0, "new": 5.0}, {"a": 60.0, "b": 100.0}, 3.0)
    assert flagged == {"b": 10.0, "new": None}
    with pytest.raises(InvalidInput):
        blocklist.far_off_prediction({}, {}, 1.0)


def test_named_destinations_can_skip_the_exemptions():
    firehol_like = [ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("192.0.2.0/24")]
    entries = blocklist.block_entries([("blocklist:x", firehol_like),
                                       ("manual", [ipaddress.ip_network("198.18.9.0/24")], False)])
    assert blocklist.is_blocked("198.18.9.1", entries) == "manual"
    assert blocklist.is_blocked("198.18.8.1", entries) is None
    assert blocklist.is_blocked("192.0.2.1", entries) == "blocklist:x"
