# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: a desktop's block list as one nftables table on the hypervisor host.

Each desktop gets its own ``bridge`` family table ``sd_<desktop>`` so that removing the block is one ``delete
table`` that leaves nothing behind, and replacing it is one atomic ``nft -f`` transaction (no moment without
the block). The bridge family sees a guest's frames on its tap whether they are bridged to another port or go up
to the host's routing (``prerouting``, ``iifname``) and whatever is sent to it (``postrouting``, ``oifname``), so
a blocked destination is dropped before it reaches the wire in both directions. One set per reason (``blocklist:
firehol_level1``, ``forecast: far off the prediction``, ...), so every drop is counted and logged (rate-limited,
prefix ``sd-block <desktop> <set>``) with its reason; the set's comment carries the reason in full. The table
comment carries a digest of the wanted content, which is how a rerun knows nothing changed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

FAMILY = "bridge"
PRIORITY = -10
LOG_RATE = "10/second"


def table_name(desktop):
    slug = re.sub(r"[^A-Za-z0-9_]", "_", desktop)[:32]
    return "sd_%s_%s" % (slug, hashlib.sha1(desktop.encode()).hexdigest()[:6])


def _quote(text):
    # nft strings cannot contain double quotes; reasons are free text from users
    return '"%s"' % re.sub(r'["\\\n\r]', "'", str(text))[:120]


def desired(desktop, interfaces, entries):
    """Grouped sets: ``{"table", "interfaces", "sets": [{"name", "family", "reason", "cidrs"}], "digest"}``."""
    if not interfaces:
        raise InvalidInput("no interface to bind the block list of %s to" % desktop)
    for iface in interfaces:
        if not re.match(r"^[A-Za-z0-9_.:@-]{1,15}$", iface):
            raise InvalidInput("%r is not an interface name" % iface)
    by_reason = {}
    for entry in entries:
        net = ipaddress.ip_network(entry["cidr"])
        by_reason.setdefault(entry["reason"], {4: [], 6: []})[net.version].append(str(net))
    sets = []
    for index, reason in enumerate(sorted(by_reason)):
        for version in (4, 6):
            cidrs = sorted(by_reason[reason][version], key=ipaddress.ip_network)
            if cidrs:
                sets.append({"name": "r%d_v%d" % (index, version), "family": version, "reason": reason,
                             "cidrs": cidrs})
    body = json.dumps([sorted(interfaces), sets], sort_keys=True)
    return {"table": table_name(desktop), "desktop": desktop, "interfaces": sorted(interfaces), "sets": sets,
            "digest": hashlib.sha256(body.encode()).hexdigest()[:24]}


def render(want):
    """The nft script that replaces the table atomically."""
    name = want["table"]
    ifaces = "{ %s }" % ", ".join(_quote(i) for i in want["interfaces"])
    lines = ["table %s %s" % (FAMILY, name), "delete table %s %s" % (FAMILY, name),
             "table %s %s {" % (FAMILY, name),
             "  comment %s" % _quote("shadowdesk block list of %s digest=%s" % (want["desktop"], want["digest"]))]
    pre, post = [], []
    for s in want["sets"]:
        addr_type, match = ("ipv4_addr", "ip") if s["family"] == 4 else ("ipv6_addr", "ip6")
        lines.append("  set %s {" % s["name"])
        lines.append("    type %s; flags interval; comment %s" % (addr_type, _quote(s["reason"])))
        lines.append("    elements = { %s }" % ", ".join(s["cidrs"]))
        lines.append("  }")
        prefix = _quote("sd-block %s %s: " % (want["desktop"][:20], s["name"]))
        pre.append("    iifname %s %s daddr @%s limit rate %s log prefix %s" % (ifaces, match, s["name"], LOG_RATE, prefix))
        pre.append("    iifname %s %s daddr @%s counter drop comment %s" % (ifaces, match, s["name"], _quote(s["reason"])))
        post.append("    oifname %s %s saddr @%s counter drop comment %s" % (ifaces, match, s["name"], _quote(s["reason"])))
    for chain, hook, rules in (("to_destination", "prerouting", pre), ("from_destination", "postrouting", post)):
        lines.append("  chain %s {" % chain)
        lines.append("    type filter hook %s priority %d; policy accept;" % (hook, PRIORITY))
        lines.extend(rules)
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def read(runner, desktop):
    """``None`` or ``{"table", "digest", "sets": {name: count}, "dropped": {"packets", "bytes"}}`` from the kernel."""
    name = table_name(desktop)
    rc, out, _err = runner.run(["nft", "-j", "list", "table", FAMILY, name], check=False)
    if rc != 0:
        return None
    data = json.loads(out).get("nftables", [])
    # nft 1.0.6 leaves the table comment out of its JSON; the terse listing has it without the elements
    terse = runner.run(["nft", "-t", "list", "table", FAMILY, name])[1]
    match = re.search(r"digest=([0-9a-f]+)", terse)
    digest = match.group(1) if match else None
    sets, dropped = {}, {"packets": 0, "bytes": 0}
    for item in data:
        if "set" in item:
            sets[item["set"]["name"]] = len(item["set"].get("elem", []))
        elif "rule" in item:
            for expr in item["rule"].get("expr", []):
                if "counter" in expr:
                    dropped["packets"] += expr["counter"]["packets"]
                    dropped["bytes"] += expr["counter"]["bytes"]
    return {"table": name, "digest": digest, "sets": sets, "dropped": dropped}


def apply(runner, desktop, interfaces, entries, check_mode=False):
    """Install or replace the desktop's block table. ``{"changed", "table", "blocked": [...], "before"}``."""
    for iface in interfaces:
        if not runner.interface_exists(iface):
            raise InvalidInput("interface %s does not exist on this host" % iface, interface=iface)
    want = desired(desktop, interfaces, entries)
    have = read(runner, desktop)
    same = have is not None and have["digest"] == want["digest"] and \
        have["sets"] == {s["name"]: len(s["cidrs"]) for s in want["sets"]}
    if not same and not check_mode:
        runner.run(["nft", "-f", "-"], stdin=render(want))
    return {"changed": not same, "table": want["table"], "before": have,
            "sets": [{"name": s["name"], "reason": s["reason"], "entries": len(s["cidrs"])} for s in want["sets"]]}


def remove(runner, desktop, check_mode=False):
    have = read(runner, desktop)
    if have is None:
        return {"changed": False, "table": table_name(desktop), "before": None}
    if not check_mode:
        runner.run(["nft", "delete", "table", FAMILY, table_name(desktop)])
    return {"changed": True, "table": table_name(desktop), "before": have}
