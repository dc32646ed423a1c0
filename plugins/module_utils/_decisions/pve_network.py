# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: what a desktop's network shadow is on Proxmox VE, and what must change to get there.

The shadow is the VM's ``net1`` (recognised by a MAC derived from the desktop name, so a NIC somebody else put
at ``net1`` is never taken over), on the shadow bridge with ``firewall=1`` and ``rate`` = the interface rate; and,
when something is blocked, one cluster IP set per reason plus two VM rules per set (``out`` DROP to the set,
``in`` DROP from it). An IP set is named after its reason and content (``sdnet-<sha1>``), so desktops with the
same block list share it, a changed list gets a new set instead of editing a shared one, and a set can be deleted
only when no rule anywhere still references it. Our rules are recognised by their comment.

PVE facts this relies on (pve-firewall; copied by the stand-in, docs/decisions.md D26): a new rule goes to
position 0 whatever ``pos`` says, ``enable`` defaults to 0, an IP set entry is stored without ``/32``
(``/128``), ``net[n].rate`` is in MB/s (megabytes), and the VM firewall's ``enable`` option (default off)
filters only NICs with ``firewall=1``.

Pure functions, stdlib only.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

NIC_KEY = "net1"
SET_PREFIX = "sdnet-"
RULE_TAG = "shadowdesk-netshadow"
# Said in our rules' comments when we turned the VM firewall on (it was off): the teardown turns it off again.
FIREWALL_MARK = "[fw]"
NIC_MODELS = ("e1000", "e1000-82540em", "e1000-82544gc", "e1000-82545em", "e1000e", "i82551", "i82557b",
              "i82559er", "ne2k_isa", "ne2k_pci", "pcnet", "rtl8139", "virtio", "vmxnet3")
_BRIDGE = re.compile(r"^[-_.\w]{1,15}$", re.A)
_IPSET_REF = re.compile(r"^\+(?:guest/|dc/|sdn/)?([A-Za-z][A-Za-z0-9\-_]+)$")


def shadow_mac(desktop):
    """A stable MAC for the desktop's shadow NIC, under PVE's own prefix (BC:24:11) + a digest of the name."""
    digest = hashlib.sha256(("shadowdesk-netshadow:" + desktop).encode()).hexdigest().upper()
    return "BC:24:11:%s:%s:%s" % (digest[0:2], digest[2:4], digest[4:6])


def check_bridge(bridge):
    if not isinstance(bridge, str) or not _BRIDGE.match(bridge):
        raise InvalidInput("shadow bridge %r is not a valid Proxmox VE bridge name (at most 15 characters of "
                           "letters, digits, '-', '_', '.')" % (bridge,))
    return bridge


def rate_mb_s(rate_mbit):
    """Mbit/s -> the ``rate`` of a PVE NIC (MB/s, megabytes), as PVE prints a number (no exponent)."""
    text = "%.3f" % (float(rate_mbit) / 8.0)
    text = text.rstrip("0").rstrip(".")
    if text in ("", "0"):
        raise InvalidInput("rate_mbit %g is below what a Proxmox VE NIC rate can express (0.001 MB/s)" % rate_mbit)
    return text


def parse_nic(value):
    """``'virtio=BC:..,bridge=vmbr9,firewall=1,rate=12.5'`` -> ``{"model", "mac", other options...}``."""
    out = {}
    for part in (value or "").split(","):
        key, _sep, val = part.partition("=")
        if key in NIC_MODELS:
            out["model"], out["mac"] = key, val.upper()
        elif key == "model":
            out["model"] = val
        elif key == "macaddr":
            out["mac"] = val.upper()
        elif key:
            out[key] = val
    return out


def nic_is_ours(value, desktop):
    return value is not None and parse_nic(value).get("mac") == shadow_mac(desktop)


def nic_value(desktop, bridge, rate_mbit, current=None):
    """The wanted ``net1``: our MAC, the shadow bridge, ``firewall=1`` and the rate; other options of the current
    value (queues, mtu, ...) are kept."""
    parsed = parse_nic(current) if current else {}
    model = parsed.pop("model", "virtio")
    parsed.pop("mac", None)
    parsed.update({"bridge": check_bridge(bridge), "firewall": "1", "rate": rate_mb_s(rate_mbit)})
    return ",".join(["%s=%s" % (model, shadow_mac(desktop))] + ["%s=%s" % (k, parsed[k]) for k in sorted(parsed)])


def nic_differs(current, wanted):
    """True when ``current`` and ``wanted`` NIC values mean different things (order and case do not count)."""
    if current is None:
        return True
    a, b = parse_nic(current), parse_nic(wanted)
    if a.get("firewall") in ("1", "on", "yes", "true"):
        a["firewall"] = "1"
    for parsed in (a, b):
        if "rate" in parsed:
            parsed["rate"] = "%g" % float(parsed["rate"])
    return a != b


def pve_cidr(cidr):
    """A CIDR the way PVE stores an IP set entry: host networks without ``/32`` / ``/128``."""
    net = ipaddress.ip_network(cidr, strict=True)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def set_name(reason, cidrs):
    digest = hashlib.sha1(("%s\n%s" % (reason, "\n".join(sorted(cidrs)))).encode()).hexdigest()
    return SET_PREFIX + digest[:16]


def wanted_sets(entries):
    """``[{"name", "reason", "cidrs"}]`` from the block entries (``[{"cidr", "reason"}]``), one set per reason."""
    by_reason = {}
    for entry in entries:
        by_reason.setdefault(entry["reason"], []).append(pve_cidr(entry["cidr"]))
    return [{"name": set_name(reason, cidrs), "reason": reason, "cidrs": sorted(cidrs)}
            for reason, cidrs in sorted(by_reason.items())]


def set_comment(reason):
    return ("shadowdesk network shadow: %s" % reason).replace("\n", " ")


def _comment(reason, firewall_mark):
    text = "%s block %s%s" % (RULE_TAG, reason, (" " + FIREWALL_MARK) if firewall_mark else "")
    return text.replace("\n", " ")


def is_ours(rule):
    return str(rule.get("comment", "")).startswith(RULE_TAG + " ")


def marks_firewall(rules):
    """True when one of our rules says we turned the VM firewall on."""
    return any(is_ours(r) and str(r.get("comment", "")).endswith(" " + FIREWALL_MARK) for r in rules)


def wanted_rules(sets, iface, firewall_mark):
    """Our rules in the order they must stand (each set: ``out`` DROP to it, then ``in`` DROP from it), as the
    parameters of a rule POST. ``iface`` None = every NIC of the VM that has ``firewall=1``."""
    rules = []
    for item in sets:
        ref = "+dc/" + item["name"]
        for rtype, side in (("out", "dest"), ("in", "source")):
            rule = {"type": rtype, "action": "DROP", side: ref, "enable": 1, "log": "info",
                    "comment": _comment(item["reason"], firewall_mark)}
            if iface:
                rule["iface"] = iface
            rules.append(rule)
    return rules


_RULE_FIELDS = ("type", "action", "source", "dest", "iface", "proto", "dport", "sport", "macro", "log", "comment")


def _rule_key(rule):
    return tuple(str(rule.get(k) or "") for k in _RULE_FIELDS) + (int(rule.get("enable") or 0),)


def rules_plan(current, wanted):
    """What changes our rules: ``{"delete": [positions, highest first], "create": [POST params, in the order
    to send them]}``. Nothing when ours already stand in the wanted order; otherwise all of ours are replaced
    (PVE puts every new rule at position 0, so they are sent last-first)."""
    mine = [r for r in sorted(current, key=lambda r: int(r["pos"])) if is_ours(r)]
    if [_rule_key(r) for r in mine] == [_rule_key(r) for r in wanted]:
        return {"delete": [], "create": []}
    return {"delete": sorted((int(r["pos"]) for r in mine), reverse=True), "create": list(reversed(wanted))}


def referenced_sets(rules):
    """Names of the IP sets that ``rules`` reference in ``source`` or ``dest``."""
    names = set()
    for rule in rules:
        for side in ("source", "dest"):
            match = _IPSET_REF.match(str(rule.get(side) or ""))
            if match:
                names.add(match.group(1))
    return names


def entries_plan(current, wanted):
    """``{"add": [...], "remove": [...]}`` to make an IP set's entries (``[{"cidr", "nomatch"?}]``) ``wanted``."""
    have = {e["cidr"] for e in current if not e.get("nomatch")}
    stray = [e["cidr"] for e in current if e.get("nomatch")]
    want = set(wanted)
    return {"add": sorted(want - have), "remove": sorted((have - want) | set(stray))}


def firewall_plan(options_enabled, blocking, marked):
    """Whether the VM firewall must be turned on or off: ``"on"``, ``"off"`` or None, and the mark to write.

    It is turned on only for a block list and only if no other NIC has ``firewall=1`` (turning it on would change
    what those NICs let through: refused by the caller); turned off again only when we turned it on."""
    if blocking:
        if options_enabled:
            return None, marked
        return "on", True
    return ("off" if (options_enabled and marked) else None), False
