# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: which traffic-control and filtering features this host's kernel offers, measured, not assumed.

Kernels differ (this project's CI kernel has no ``sfq``, ``police``, ``flower``, ``fw``, ``matchall``; a production
host may have all of them), and a missing module only shows when a rule is added. So the probe builds a throwaway
network namespace with a veth pair, tries each qdisc / classifier / action / link type / nftables feature there,
and deletes the namespace: the host's own interfaces are never touched. The network shadow needs ``htb`` + ``u32``
(shaping towards the desktop), ``ingress`` + ``mirred`` + ``ifb`` (shaping what leaves the desktop) and nftables
bridge-family interval sets (blocking); :func:`require` names whatever of that is missing.
"""

from __future__ import annotations

import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import OperationRefused
from ansible_collections.shadowdesk.vdi.plugins.module_utils._netshadow.runner import HostRunner

# qdisc -> the minimal arguments it accepts
QDISCS = {"htb": [], "tbf": ["rate", "1mbit", "burst", "10k", "latency", "50ms"], "sfq": [], "fq_codel": [],
          "prio": [], "cake": [], "netem": []}
CLASSIFIERS = ("u32", "flower", "fw", "matchall")
ACTIONS = ("mirred", "police")
NEEDS = {
    "shaping towards the desktop": ("qdisc:htb", "classifier:u32"),
    "shaping what leaves the desktop": ("qdisc:ingress", "classifier:u32", "action:mirred", "link:ifb"),
    "blocking": ("nftables:bridge_interval_sets",),
}
_NFT_PROBE = """table bridge sdprobe {
  set s { type ipv4_addr; flags interval; elements = { 198.18.0.0/15 comment "probe" } }
  chain pre { type filter hook prerouting priority -10; policy accept;
    iifname "sdp0" ip daddr @s counter drop
  }
}
"""


def _try(runner, argv, stdin=None):
    rc = runner.run(argv, stdin=stdin, check=False)[0]
    return rc == 0


def probe(runner=None):
    """``{"qdisc": {name: bool}, "classifier": {...}, "action": {...}, "link": {"ifb": bool},
    "nftables": {"bridge_interval_sets": bool}, "missing": [feature, ...], "unusable": {purpose: [missing]}}``."""
    runner = runner or HostRunner()
    ns = "sdprobe-%d" % os.getpid()
    runner.run(["ip", "netns", "add", ns])
    inside = HostRunner(netns=ns, timeout=runner.timeout)
    found = {"qdisc": {}, "classifier": {}, "action": {}, "link": {}, "nftables": {}}
    try:
        runner.run(["ip", "-n", ns, "link", "add", "sdp0", "type", "veth", "peer", "name", "sdp1"])
        runner.run(["ip", "-n", ns, "link", "set", "sdp0", "up"])
        for qdisc, args in QDISCS.items():
            inside.run(["tc", "qdisc", "del", "dev", "sdp0", "root"], check=False)  # "replace" does not change the kind of an existing root
            ok = _try(inside, ["tc", "qdisc", "add", "dev", "sdp0", "root", "handle", "1:", qdisc] + args)
            found["qdisc"][qdisc] = ok
        inside.run(["tc", "qdisc", "del", "dev", "sdp0", "root"], check=False)
        inside.run(["tc", "qdisc", "add", "dev", "sdp0", "root", "handle", "1:", "htb"], check=False)
        found["qdisc"]["ingress"] = _try(inside, ["tc", "qdisc", "add", "dev", "sdp0", "ingress"])
        found["link"]["ifb"] = _try(runner, ["ip", "-n", ns, "link", "add", "sdpifb", "type", "ifb"])
        matches = {"u32": ["u32", "match", "u32", "0", "0"], "flower": ["flower"], "fw": ["fw"],
                   "matchall": ["matchall"]}
        for pref, name in enumerate(CLASSIFIERS, 1):
            argv = ["tc", "filter", "add", "dev", "sdp0", "parent", "1:", "protocol", "ip", "prio", str(pref)]
            argv += matches[name] + (["classid", "1:1"] if name != "fw" else [])
            found["classifier"][name] = _try(inside, argv)
        actions = {"mirred": ["mirred", "egress", "redirect", "dev", "sdp1"],
                   "police": ["police", "rate", "1mbit", "burst", "10k", "drop"]}
        for pref, name in enumerate(ACTIONS, 10):
            argv = ["tc", "filter", "add", "dev", "sdp0", "parent", "ffff:", "protocol", "all", "prio", str(pref),
                    "u32", "match", "u32", "0", "0", "action"]
            found["action"][name] = _try(inside, argv + actions[name])
        found["nftables"]["bridge_interval_sets"] = _try(inside, ["nft", "-f", "-"], stdin=_NFT_PROBE)
    finally:
        runner.run(["ip", "netns", "del", ns], check=False)
    missing = sorted("%s:%s" % (kind, name) for kind, names in found.items() for name, ok in names.items() if not ok)
    found["missing"] = missing
    found["unusable"] = {purpose: [f for f in needs if f in missing] for purpose, needs in NEEDS.items()
                         if any(f in missing for f in needs)}
    return found


def require(found, purposes):
    """Raise OperationRefused naming the missing kernel features if any of ``purposes`` cannot work here."""
    problems = {p: found["unusable"][p] for p in purposes if p in found["unusable"]}
    if problems:
        raise OperationRefused("this host's kernel lacks what the network shadow needs: %s" % "; ".join(
            "%s needs %s" % (p, ", ".join(m)) for p, m in sorted(problems.items())), missing=problems)
