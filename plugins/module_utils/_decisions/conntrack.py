# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the hypervisor's connection table (``/proc/net/nf_conntrack``) -> flow records of one sample. Pure.

A conntrack entry is a connection with cumulative counters (when ``nf_conntrack_acct`` is on). Sampling every few
minutes would count a long connection again at every sample, so a sample keeps a *cursor*: per connection, the
counters seen last time, and emits only what moved since, as a flow record from the previous sample to this one.
A connection still open with nothing moved still counts as one concurrent connection for the interval.

The cursor never holds an address: a connection is keyed by an HMAC of its 5-tuple with a random per-host salt
kept beside it, so the state file on the hypervisor says how much moved, not who talked to whom.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._time import iso_z, to_utc

FIRST_INTERVAL_S = 300  # a connection first seen now is counted from this long ago, at most


def parse_conntrack(text):
    """Entries ``{"proto", "src", "dst", "sport", "dport", "bytes", "packets", "counted"}`` of a
    ``/proc/net/nf_conntrack`` (or ``conntrack -L -o extended``) text; ``bytes``/``packets`` are both directions.
    ``counted`` is false when the kernel keeps no counters (``nf_conntrack_acct`` off). Unreadable lines raise."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) < 6 or tokens[0] not in ("ipv4", "ipv6"):
            raise InvalidInput("line %d of the connection table is not a conntrack entry: %r" % (number, line[:80]))
        proto = tokens[2]
        original, reply = {}, {}
        for token in tokens[5:]:
            key, sep, value = token.partition("=")
            if not sep:
                continue
            side = reply if key in original else original
            side.setdefault(key, value)
        if "src" not in original or "dst" not in original:
            raise InvalidInput("line %d of the connection table has no src/dst: %r" % (number, line[:80]))
        counted = "bytes" in original
        entries.append({
            "proto": proto, "src": original["src"], "dst": original["dst"],
            "sport": original.get("sport"), "dport": original.get("dport"),
            "bytes": int(original.get("bytes", 0)) + int(reply.get("bytes", 0)),
            "packets": int(original.get("packets", 0)) + int(reply.get("packets", 0)),
            "counted": counted,
        })
    return entries


def _key(entry, salt):
    tuple_text = "|".join(str(entry.get(k)) for k in ("proto", "src", "sport", "dst", "dport"))
    return hmac.new(salt.encode("ascii"), tuple_text.encode("utf-8"), hashlib.sha256).hexdigest()[:32]


def sample(entries, cursor, now, salt):
    """Flow records of what moved since the cursor, and the new cursor.

    ``cursor``: ``{"sampled_at": iso or None, "connections": {key: [bytes, packets]}}``. Returns ``(records,
    new_cursor)``; records carry the addresses only in memory, for ``flow_aggregate`` to reduce to classes."""
    if not salt:
        raise InvalidInput("a sample needs the host's salt")
    now = to_utc(now, "now")
    previous = cursor.get("sampled_at") if isinstance(cursor, dict) else None
    seen = (cursor or {}).get("connections") or {}
    start = to_utc(previous, "the cursor's sampled_at") if previous else None
    if start is None or start >= now or (now - start).total_seconds() > 24 * 3600:
        start = now - _dt.timedelta(seconds=FIRST_INTERVAL_S)
    records, connections = [], {}
    for entry in entries:
        key = _key(entry, salt)
        last_bytes, last_packets = seen.get(key, (0, 0))
        moved_bytes = entry["bytes"] - last_bytes if entry["bytes"] >= last_bytes else entry["bytes"]
        moved_packets = entry["packets"] - last_packets if entry["packets"] >= last_packets else entry["packets"]
        connections[key] = [entry["bytes"], entry["packets"]]
        records.append({"start": iso_z(start), "end": iso_z(now), "src": entry["src"], "dst": entry["dst"],
                        "dst_port": entry["dport"], "proto": entry["proto"], "bytes": moved_bytes,
                        "packets": moved_packets})
    return records, {"sampled_at": iso_z(now), "connections": connections}
