# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: which destinations a desktop's network shadow blocks, and why.

A block list arrives as FireHOL netset text (one IPv4/IPv6 address or CIDR per line, ``#`` comments). Such lists
carry bogons and private ranges (10.0.0.0/8, 192.168.0.0/16, 127.0.0.0/8, ...), which would cut a desktop off its
own LAN, so ranges inside the configured exemptions are dropped and a listed range that *contains* an exempt range
is split around it. An allow-list wins over every block. Each resulting entry keeps its reason, because every
block must be explainable in the log and in the firewall element's comment.

Pure functions, stdlib only (``ipaddress``): the blocking module runs them on the hypervisor and check mode shows
their result.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

# Private, loopback, link-local, CGNAT, benchmarking (RFC 2544, used inside sites and by our own namespaces) and
# multicast/reserved space: FireHOL lists them as bogons; exempt unless configured otherwise.
DEFAULT_EXEMPT = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.168.0.0/16", "198.18.0.0/15", "224.0.0.0/3", "::1/128", "fc00::/7", "fe80::/10",
)
MAX_ENTRIES = 200000


def parse_network(text, what="address"):
    """An ``ip_network`` from ``1.2.3.4`` or ``1.2.3.0/24`` (host bits must be zero); InvalidInput otherwise."""
    if not isinstance(text, str):
        raise InvalidInput("%s must be a string, got %r" % (what, text))
    try:
        return ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        raise InvalidInput("%s %r is not an IP address or CIDR (%s)" % (what, text, exc)) from None


def parse_netset(text, source="netset"):
    """The networks listed in FireHOL netset ``text``.

    Blank lines and ``#`` comments (whole-line or trailing) are skipped. A malformed line fails the whole list
    with its line number: a half-read block list would silently let destinations through.
    """
    if not isinstance(text, str):
        raise InvalidInput("%s: expected text" % source)
    networks = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            networks.append(ipaddress.ip_network(line, strict=True))
        except ValueError:
            raise InvalidInput("%s line %d is not an IP address or CIDR: %r" % (source, lineno, raw[:80]),
                               source=source, line=lineno) from None
        if len(networks) > MAX_ENTRIES:
            raise InvalidInput("%s has more than %d entries" % (source, MAX_ENTRIES), source=source)
    if not networks:
        raise InvalidInput("%s lists no address (empty or only comments)" % source, source=source)
    return networks


def _subtract(network, holes):
    """``network`` minus every network in ``holes`` (same IP version), as a list of networks."""
    pieces = [network]
    for hole in holes:
        if hole.version != network.version:
            continue
        next_pieces = []
        for piece in pieces:
            if piece.subnet_of(hole):
                continue
            if hole.subnet_of(piece):
                next_pieces.extend(piece.address_exclude(hole))
            else:
                next_pieces.append(piece)
        pieces = next_pieces
    return pieces


def block_entries(sources, exempt=DEFAULT_EXEMPT, allow=()):
    """The effective block entries: ``[{"cidr", "reason"}]``, sorted, collapsed, exemptions and allow-list cut out.

    ``sources`` is a list of ``(reason, [ip_network, ...])``: e.g. ``("blocklist:firehol_level1", nets)`` or
    ``("forecast:far off prediction", nets)``, optionally with a third element ``False`` for a source the
    exemptions do not apply to (destinations an operator named one by one). The first reason that lists an
    address keeps it; the allow-list always wins.
    """
    exempt_nets = [parse_network(x, "exempt range") if isinstance(x, str) else x for x in exempt]
    allowed = [parse_network(x, "allowed address") if isinstance(x, str) else x for x in allow]
    taken = []
    entries = []
    for source in sources:
        reason, networks = source[0], source[1]
        holes = (exempt_nets if (len(source) < 3 or source[2]) else []) + allowed
        by_version = {4: [], 6: []}
        for net in networks:
            by_version[net.version].append(net)
        added = []
        for version in (4, 6):
            for net in ipaddress.collapse_addresses(by_version[version]):
                for piece in _subtract(net, holes + taken):
                    entries.append({"cidr": str(piece), "reason": reason})
                    added.append(piece)
        taken.extend(added)
    return sorted(entries, key=lambda e: (ipaddress.ip_network(e["cidr"]).version, ipaddress.ip_network(e["cidr"])))


def is_blocked(address, entries):
    """The reason ``address`` is blocked by ``entries`` (from :func:`block_entries`), or None."""
    addr = ipaddress.ip_address(address)
    for entry in entries:
        if addr in ipaddress.ip_network(entry["cidr"]):
            return entry["reason"]
    return None


def far_off_prediction(observed, predicted_high, threshold):
    """Destinations whose observed volume exceeds ``threshold`` × the upper forecast bound (or have no forecast).

    ``observed``/``predicted_high``: ``{destination: bytes}``. A destination the forecast never saw counts as far
    off only when ``threshold`` is finite and its volume is positive; returns ``{destination: ratio or None}``.
    """
    if threshold <= 1:
        raise InvalidInput("the far-off threshold must be above 1 (a multiple of the upper forecast bound)")
    flagged = {}
    for dest, volume in observed.items():
        high = predicted_high.get(dest)
        if high is None:
            if volume > 0:
                flagged[dest] = None
        elif volume > threshold * max(high, 1.0):
            flagged[dest] = volume / max(high, 1.0)
    return flagged
