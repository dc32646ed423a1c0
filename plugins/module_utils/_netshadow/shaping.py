# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: per-desktop bandwidth reservations on the host side of a desktop's interface (htb + u32 + ifb).

Built only from what the probe (``features.py``) found on kernels without ``sfq``/``police``/``flower``: traffic
*to* the desktop leaves the host through the desktop's tap/veth, so an HTB root there (``1:``) carries the
interface rate (class ``1:1``), one class per reservation (``1:10``, ``1:11``, ...: guaranteed ``rate``, may
borrow up to the interface rate, served first) and the rest in ``1:2``; u32 filters pick the reserved destinations
by IPv4 *source* prefix. Traffic *from* the desktop arrives on the tap's ingress, where nothing can be queued, so
an ingress u32 rule redirects it (``mirred``) to an ``ifb`` device that carries the same classes, filtered by
*destination* prefix. Raising a reservation from its minimal to its full rate at the predicted window only changes
class rates (``tc class change``); anything else rebuilds the tree. Removing deletes the root and ingress qdiscs
and the ifb, which leaves the interface as it was.

Why u32 and not nftables ``meta priority``: the ifb path is not seen by nftables, and one classifier for both
directions keeps the read-back (which decides ``changed``) exact.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

ROOT = "1:"
INTERFACE_CLASS = "1:1"
BULK_CLASS = "1:2"
FIRST_RESERVED = 0x10
MAX_RESERVATIONS = 200
_UNITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12}


def ifb_name(interface):
    """The ifb device carrying ``interface``'s outgoing shaping (IFNAMSIZ: at most 15 characters)."""
    return "sdi" + hashlib.sha1(interface.encode()).hexdigest()[:10]


def _kbit(mbit):
    return "%dkbit" % max(int(round(mbit * 1000)), 8)


def desired(interface, rate_mbit, reservations):
    """The tc state for ``interface``: ``{"interface", "ifb", "rate_mbit", "classes": {classid: {rate, ceil,
    prio, name, cidrs}}}``. ``reservations``: ``[{"name", "cidrs": [...], "rate_mbit"}]`` (IPv4 prefixes)."""
    if not isinstance(rate_mbit, (int, float)) or isinstance(rate_mbit, bool) or rate_mbit <= 0:
        raise InvalidInput("rate_mbit of %s must be a positive number" % interface)
    if len(reservations) > MAX_RESERVATIONS:
        raise InvalidInput("at most %d reservations per interface" % MAX_RESERVATIONS)
    classes = {}
    reserved = 0.0
    seen_names = set()
    for index, res in enumerate(sorted(reservations, key=lambda r: r["name"])):
        name, rate = res["name"], res["rate_mbit"]
        if name in seen_names:
            raise InvalidInput("reservation %r is listed twice" % name)
        seen_names.add(name)
        if not isinstance(rate, (int, float)) or isinstance(rate, bool) or rate <= 0:
            raise InvalidInput("reservation %r: rate_mbit must be a positive number" % name)
        cidrs = []
        for cidr in res["cidrs"]:
            try:
                net = ipaddress.ip_network(str(cidr), strict=True)
            except ValueError:
                raise InvalidInput("reservation %r: %r is not a CIDR" % (name, cidr)) from None
            if net.version != 4:
                raise InvalidInput("reservation %r: only IPv4 destinations can be reserved on this host (%s)"
                                   % (name, cidr))
            cidrs.append(str(net))
        if not cidrs:
            raise InvalidInput("reservation %r has no destination" % name)
        reserved += rate
        classes["1:%x" % (FIRST_RESERVED + index)] = {"rate": _kbit(rate), "ceil": _kbit(rate_mbit), "prio": 0,
                                                      "name": name, "cidrs": sorted(cidrs)}
    if reserved > rate_mbit + 1e-9:
        raise InvalidInput("the reservations on %s add up to %g Mbit/s, more than the interface rate %g Mbit/s"
                           % (interface, reserved, rate_mbit))
    classes[INTERFACE_CLASS] = {"rate": _kbit(rate_mbit), "ceil": _kbit(rate_mbit), "prio": 0, "name": None,
                                "cidrs": []}
    classes[BULK_CLASS] = {"rate": _kbit(max(rate_mbit - reserved, rate_mbit * 0.01)), "ceil": _kbit(rate_mbit),
                           "prio": 1, "name": None, "cidrs": []}
    return {"interface": interface, "ifb": ifb_name(interface), "rate_mbit": rate_mbit, "classes": classes}


def _bits(text):
    match = re.match(r"^([0-9.]+)([A-Za-z]*)$", text)
    if not match:
        return None
    value, unit = float(match.group(1)), match.group(2).lower() or "bit"
    if unit.endswith("bps"):
        return value * 8 * _UNITS.get(unit[:-3] + "bit", 1)
    return value * _UNITS.get(unit, 1)


def _structure(state):
    """What must match exactly for a class-rate change to be enough: class ids and filters."""
    return sorted((cid, tuple(c["cidrs"])) for cid, c in state["classes"].items())


def _u32_key(cidr, offset):
    net = ipaddress.ip_network(cidr)
    mask = int(net.netmask)
    return ("%x" % int(net.network_address), "%08x" % mask, offset)


def _norm_hex(text):
    return "%x" % int(str(text), 16) if text not in (None, "") else "0"


def read(runner, interface):
    """The shaping state read back from the kernel: ``None`` when ``interface`` carries no ShadowDesk tree."""
    qdiscs = runner.json(["tc", "-j", "qdisc", "show", "dev", interface], default=[])
    root = [q for q in qdiscs if q.get("root") and q.get("kind") == "htb" and q.get("handle") == ROOT]
    if not root:
        return None
    ifb = ifb_name(interface)
    text = runner.run(["tc", "class", "show", "dev", interface])[1]
    classes = {}
    pattern = r"class htb (\S+) (?:parent \S+ |root )(?:leaf \S+ )?(?:prio (\d+) )?rate (\S+) ceil (\S+)"
    for match in re.finditer(pattern, text):
        classes[match.group(1)] = {"rate": _bits(match.group(3)), "ceil": _bits(match.group(4)),
                                   "prio": int(match.group(2) or 0), "cidrs": []}
    filters = runner.json(["tc", "-j", "filter", "show", "dev", interface, "parent", ROOT], default=[])
    keys = {}
    for flt in filters:
        opts = flt.get("options") or {}
        if opts.get("flowid") and opts.get("match"):
            m = opts["match"]
            keys.setdefault(opts["flowid"], []).append((_norm_hex(m.get("value")), "%08x" % int(m.get("mask"), 16),
                                                        m.get("off")))
    up_ok = runner.interface_exists(ifb)
    ingress = runner.json(["tc", "-j", "filter", "show", "dev", interface, "ingress"], default=[])
    redirected = any(a.get("kind") == "mirred" and a.get("to_dev") == ifb
                     for f in ingress for a in (f.get("options") or {}).get("actions", []))
    up_keys = {}
    if up_ok:
        for flt in runner.json(["tc", "-j", "filter", "show", "dev", ifb, "parent", ROOT], default=[]):
            opts = flt.get("options") or {}
            if opts.get("flowid") and opts.get("match"):
                m = opts["match"]
                up_keys.setdefault(opts["flowid"], []).append(
                    (_norm_hex(m.get("value")), "%08x" % int(m.get("mask"), 16), m.get("off")))
    return {"interface": interface, "classes": classes, "keys": keys, "up_keys": up_keys,
            "ifb_present": up_ok, "redirected": redirected}


def compare(want, have):
    """``"same"``, ``"rates"`` (only class rates differ) or ``"rebuild"``."""
    if have is None:
        return "rebuild"
    if sorted(have["classes"]) != sorted(want["classes"]) or not have["ifb_present"] or not have["redirected"]:
        return "rebuild"
    for cid, cls in want["classes"].items():
        down = sorted(_u32_key(c, 12) for c in cls["cidrs"])
        up = sorted(_u32_key(c, 16) for c in cls["cidrs"])
        if sorted(have["keys"].get(cid, [])) != down or sorted(have["up_keys"].get(cid, [])) != up:
            return "rebuild"
    for cid, cls in want["classes"].items():
        got = have["classes"][cid]
        if abs(got["rate"] - _bits(cls["rate"])) > 0.01 * _bits(cls["rate"]) or \
                abs(got["ceil"] - _bits(cls["ceil"])) > 0.01 * _bits(cls["ceil"]):
            return "rates"
    return "same"


def _class_cmds(verb, dev, want):
    cmds = []
    for cid in [INTERFACE_CLASS] + sorted(c for c in want["classes"] if c != INTERFACE_CLASS):
        cls = want["classes"][cid]
        parent = ROOT if cid == INTERFACE_CLASS else INTERFACE_CLASS
        quantum = str(min(max(int(_bits(cls["rate"]) / 8 / 10), 1514), 60000))
        cmds.append(["tc", "class", verb, "dev", dev, "parent", parent, "classid", cid, "htb", "rate", cls["rate"],
                     "ceil", cls["ceil"], "prio", str(cls["prio"]), "quantum", quantum])
    return cmds


def commands(want, how):
    """The tc/ip commands that take the interface from its current state (``compare`` result) to ``want``."""
    dev, ifb = want["interface"], want["ifb"]
    if how == "same":
        return []
    if how == "rates":
        return _class_cmds("change", dev, want) + _class_cmds("change", ifb, want)
    cmds = removal(want["interface"], ifb_present=True)
    cmds = [c + ["?"] for c in cmds]  # '?' = may fail (nothing there yet)
    cmds.append(["ip", "link", "add", ifb, "type", "ifb"])
    cmds.append(["ip", "link", "set", ifb, "up"])
    for device, offset in ((dev, "src"), (ifb, "dst")):
        cmds.append(["tc", "qdisc", "add", "dev", device, "root", "handle", ROOT, "htb", "default",
                     BULK_CLASS.split(":")[1]])
        cmds.extend(_class_cmds("add", device, want))
        for cid, cls in sorted(want["classes"].items()):
            for cidr in cls["cidrs"]:
                cmds.append(["tc", "filter", "add", "dev", device, "parent", ROOT, "protocol", "ip", "prio", "10",
                             "u32", "match", "ip", offset, cidr, "flowid", cid])
    cmds.append(["tc", "qdisc", "add", "dev", dev, "ingress"])
    cmds.append(["tc", "filter", "add", "dev", dev, "parent", "ffff:", "protocol", "all", "prio", "10", "u32",
                 "match", "u32", "0", "0", "action", "mirred", "egress", "redirect", "dev", ifb])
    return cmds


def removal(interface, ifb_present):
    cmds = [["tc", "qdisc", "del", "dev", interface, "root"], ["tc", "qdisc", "del", "dev", interface, "ingress"]]
    if ifb_present:
        cmds.append(["ip", "link", "del", ifb_name(interface)])
    return cmds


def run_commands(runner, cmds):
    for cmd in cmds:
        if cmd[-1] == "?":
            runner.run(cmd[:-1], check=False)
        else:
            runner.run(cmd)


def apply(runner, interface, rate_mbit, reservations, check_mode=False):
    """Bring ``interface`` to the wanted shaping. Returns ``{"changed", "how", "before", "after"}``."""
    if not runner.interface_exists(interface):
        raise InvalidInput("interface %s does not exist on this host" % interface, interface=interface)
    want = desired(interface, rate_mbit, reservations)
    have = read(runner, interface)
    how = compare(want, have)
    if how != "same" and not check_mode:
        run_commands(runner, commands(want, how))
    return {"changed": how != "same", "how": how, "before": summary(have), "after": summary_of_wanted(want)}


def remove(runner, interface, check_mode=False):
    if not runner.interface_exists(interface):
        return {"changed": False, "how": "absent", "before": None, "after": None}
    have = read(runner, interface)
    ifb_present = runner.interface_exists(ifb_name(interface))
    if have is None and not ifb_present:
        return {"changed": False, "how": "absent", "before": None, "after": None}
    if not check_mode:
        run_commands(runner, [c + ["?"] for c in removal(interface, ifb_present)])
    return {"changed": True, "how": "remove", "before": summary(have), "after": None}


def summary(have):
    if have is None:
        return None
    return {"classes": {cid: {"rate_mbit": round(c["rate"] / 1e6, 3), "ceil_mbit": round(c["ceil"] / 1e6, 3)}
                        for cid, c in sorted(have["classes"].items())}}


def summary_of_wanted(want):
    return {"classes": {cid: {"rate_mbit": round(_bits(c["rate"]) / 1e6, 3), "ceil_mbit": round(_bits(c["ceil"]) / 1e6, 3)}
                        for cid, c in sorted(want["classes"].items())}}
