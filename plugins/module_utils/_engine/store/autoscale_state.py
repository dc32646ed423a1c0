# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the autoscale policy's memory between rounds (table ``autoscale_state``).

One row per desktop of a hypervisor: the ``policy_state`` entry the ``autoscale`` round returned for it
(histograms, cooldown times, the last counters) as JSON. The ``autoscale`` action loads a hypervisor's states
before its round and saves what the round returned: the round's states are the whole truth for that hypervisor,
so a desktop the round no longer returns (removed from the hypervisor) loses its row. Each row's ``updated_utc``
is its version: a save given the versions it loaded leaves alone every row another round wrote meanwhile
(overlapping runs of one hypervisor), instead of putting back an older state.
"""

from __future__ import annotations

import json

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.times import (
    format_time, load_time, now_text, parse_time,
)


def _state_text(desktop, state):
    if not isinstance(desktop, str) or not desktop:
        raise InvalidInput("an autoscale state needs a desktop name, got %r" % (desktop,))
    if not isinstance(state, dict):
        raise InvalidInput("the autoscale state of %s must be a dict, got %s" % (desktop, type(state).__name__))
    try:
        # canonical text, so an unchanged state compares equal and is not rewritten
        return json.dumps(state, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInput("the autoscale state of %s is not plain JSON: %s" % (desktop, exc)) from None


def _hypervisor(hypervisor):
    if not isinstance(hypervisor, str) or not hypervisor:
        raise InvalidInput("autoscale states are kept per hypervisor: a hypervisor key is needed, got %r"
                           % (hypervisor,))
    return hypervisor


class AutoscaleStateTables:
    """Mixin of HistoryStore: reads and writes of ``autoscale_state``."""

    def autoscale_states(self, hypervisor):
        """``{desktop: state}`` of one hypervisor. A row that is not readable JSON is left out (its desktop
        learns again, and the next save overwrites the row)."""
        return self.load_autoscale_states(hypervisor)[0]

    def load_autoscale_states(self, hypervisor):
        """``(states, versions)`` of one hypervisor: ``autoscale_states`` plus ``{desktop: version}`` of every row
        (unreadable ones included), to hand to ``save_autoscale_states`` after the round."""
        rows = self._query("SELECT desktop, state, updated_utc FROM autoscale_state WHERE hypervisor = ?",
                           [_hypervisor(hypervisor)])
        states, versions = {}, {}
        for desktop, text, version in rows:
            versions[desktop] = version
            try:
                state = json.loads(text)
            except ValueError:
                continue
            if isinstance(state, dict):
                states[desktop] = state
        return states, versions

    def autoscale_state_times(self, hypervisor):
        """``{desktop: updated_at}`` (aware UTC datetimes) of one hypervisor: when each state last changed."""
        rows = self._query("SELECT desktop, updated_utc FROM autoscale_state WHERE hypervisor = ?",
                           [_hypervisor(hypervisor)])
        return {desktop: load_time(at) for desktop, at in rows}

    def save_autoscale_states(self, hypervisor, states, at=None, versions=None):
        """Make ``states`` (``{desktop: state}``) the stored states of ``hypervisor``, in one transaction: rows of
        desktops not in ``states`` are dropped, changed ones rewritten (``updated_at`` = ``at``, default now),
        equal ones left alone. With ``versions`` (what ``load_autoscale_states`` returned before the round) a row
        whose version changed since, or that appeared or vanished since, was written by another round: it is
        left as that round made it and reported in ``conflicts``. Returns ``{"saved": [desktops], "dropped":
        [desktops], "unchanged": n, "conflicts": [desktops]}``."""
        hypervisor = _hypervisor(hypervisor)
        if not isinstance(states, dict):
            raise InvalidInput("autoscale states must be a dict of desktop -> state, got %s" % type(states).__name__)
        texts = {desktop: _state_text(desktop, state) for desktop, state in states.items()}
        try:
            stamp = now_text() if at is None else format_time(parse_time(at))
        except ValueError as exc:
            raise InvalidInput("at: %s" % exc) from None
        with self._write() as tx:
            rows = tx.execute("SELECT desktop, state, updated_utc FROM autoscale_state WHERE hypervisor = ?",
                              [hypervisor]).fetchall()
            stored = {desktop: text for desktop, text, _version in rows}
            conflicts = set()
            if versions is not None:
                now_versions = {desktop: version for desktop, _text, version in rows}
                conflicts = {d for d in set(now_versions) | set(versions) if now_versions.get(d) != versions.get(d)}
            dropped = sorted(set(stored) - set(texts) - conflicts)
            saved = sorted(d for d, text in texts.items() if stored.get(d) != text and d not in conflicts)
            for desktop in dropped:
                tx.execute("DELETE FROM autoscale_state WHERE hypervisor = ? AND desktop = ?", [hypervisor, desktop])
            for desktop in saved:
                if desktop in stored:
                    tx.execute("UPDATE autoscale_state SET state = ?, updated_utc = ? WHERE hypervisor = ? AND desktop = ?",
                               [texts[desktop], stamp, hypervisor, desktop])
                else:
                    tx.execute("INSERT INTO autoscale_state (hypervisor, desktop, state, updated_utc) VALUES (?, ?, ?, ?)",
                               [hypervisor, desktop, texts[desktop], stamp])
        return {"saved": saved, "dropped": dropped, "conflicts": sorted(conflicts),
                "unchanged": len([d for d in texts if d not in conflicts]) - len(saved)}
