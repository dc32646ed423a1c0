# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the one interface every hypervisor backend implements, and the factory that picks one.

A backend translates between the neutral model (``_model``) and one hypervisor API. It never decides *what*
must change (that is ``_decisions``) and never calls ``fail_json`` (it raises ``_errors``). Adding a backend is
one file plus one entry in ``_backends/select.py``; modules, roles and playbooks do not change.
"""

from __future__ import annotations

import abc
import math

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput, OperationRefused, ShadowDeskError


def option_seconds(options, key, default):
    """A time option (seconds) from the module parameters: ``default`` when unset, else a finite number > 0."""
    value = options.get(key)
    if value is None:
        return float(default)
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InvalidInput("%s=%r is not a number of seconds" % (key, value)) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidInput("%s=%r must be a finite number of seconds above 0" % (key, value))
    return seconds


class DesktopBackend(abc.ABC):
    """A hypervisor seen as a set of user desktops.

    ``options`` is the module's parameter dict (connection options of ``_argspec.CONNECTION_ARGS`` plus anything
    else); a backend reads only the keys it knows.
    """

    name = ""

    def __init__(self, options):
        self.options = options

    # -- connection ---------------------------------------------------------------------------------------------
    def close(self):
        """Release the connection. Safe to call twice."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- facts ---------------------------------------------------------------------------------------------------
    def locate(self, names):
        """Say that the next calls work on these desktops (a batch). A backend that finds a desktop by listing the
        whole cluster reads that listing once here instead of once per desktop; the default does nothing."""

    @abc.abstractmethod
    def get(self, name):
        """Return ``DesktopFacts`` for ``name`` or ``None`` if it does not exist."""

    @abc.abstractmethod
    def list(self, user=None):
        """Return ``DesktopFacts`` of every desktop this collection manages (tagged as a shadow), optionally one user's."""

    def summaries(self):
        """Every managed desktop as a small dict (``name``, ``user``, ``state``, ``node``, ``backend``,
        ``backend_id``, ``vcpus``, ``memory_mib``), read with as few calls as the hypervisor allows: what an
        inventory of a whole pool needs. The default summarises ``list()``."""
        return [summary_of(facts) for facts in self.list()]

    @abc.abstractmethod
    def utilisation(self, name, interval=1.0):
        """Measure utilisation over ``interval`` seconds: a dict with ``cpu_percent`` (of the online vCPUs),
        ``memory`` (``{'actual_mib', 'unused_mib', 'available_mib', 'rss_mib'}`` where known), ``disks``
        (``{disk0: {'rd_bytes', 'wr_bytes', 'rd_req', 'wr_req'}}``), ``nets`` (``{net0: {'rx_bytes', 'tx_bytes'}}``),
        ``sampled_at`` (ISO-8601 UTC)."""

    def utilisation_many(self, names, interval=1.0):
        """Measure several desktops over the same ``interval`` (one autoscale round over a hypervisor): ``{name:
        utilisation dict, or the ShadowDeskError its measurement raised}``, so one unreadable desktop does not
        stop the others. The default measures one after the other (``len(names) x interval``); the adapters take
        every first sample, wait once and take every second one, so a round stays within a minute."""
        out = {}
        for name in names:
            try:
                out[name] = self.utilisation(name, interval)
            except ShadowDeskError as exc:
                out[name] = exc
        return out

    def host_capacity(self, node=None):
        """The node's size for the autoscale loop: ``{"cpus", "memory_mib", "free_memory_mib"}``; None when the
        backend cannot tell (the loop then grows nothing rather than risk overcommitting the node)."""
        return None

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def check_create(self, spec):
        """Raise InvalidInput/Conflict when ``create(spec)`` would fail for a reason that can be known without
        changing anything (bad name, missing or non-image source, sizes the host cannot hold, unknown network).
        ``create`` runs the same checks, so check mode predicts what the real run does."""

    @abc.abstractmethod
    def create(self, spec):
        """Create the desktop from ``ShadowSpec``, defined at full size (max) with shadow size current; leaves it
        shut off. Must not touch the golden image / template."""

    @abc.abstractmethod
    def start(self, name):
        """Start the desktop; resumes from saved state when there is one (restore, not a cold boot)."""

    @abc.abstractmethod
    def pause(self, name):
        """Pause a running desktop (RAM kept)."""

    @abc.abstractmethod
    def resume(self, name):
        """Resume a paused desktop."""

    @abc.abstractmethod
    def save(self, name):
        """Save the running/paused desktop's RAM to disk and release its RAM (managed save / hibernate)."""

    @abc.abstractmethod
    def stop(self, name, force=False):
        """Shut the desktop down (force: power off). Discards nothing on disk."""

    @abc.abstractmethod
    def discard_saved_state(self, name):
        """Drop a saved RAM image (the desktop then cold-boots). Only called when the user asked for it."""

    @abc.abstractmethod
    def remove(self, name, remove_storage=False):
        """Remove what the shadow owns: its definition and saved state, its own overlay/linked-clone disk only
        when ``remove_storage``. Never the golden image / template or any other disk."""

    def activity(self, name):
        """Who is on the desktop right now, as the hypervisor sees it (input of ``_decisions/release_guard``).

        A dict: ``state`` (power state), ``consoles`` (graphics/console clients connected now:
        ``[{"kind", "client", "since"}]``), ``agent`` (``answered``, ``not configured``, ``no answer`` or
        ``desktop not running``) and ``agent_users`` (``[{"user", "login_time"}]`` when the guest agent answered).
        Reads only; never changes the desktop."""
        raise InvalidInput("The %s backend cannot tell whether a desktop is in use." % self.name)

    def migrate(self, name, node):
        """Move the desktop to another compute node (live when running)."""
        raise InvalidInput("The %s backend cannot move desktops between nodes." % self.name)

    @property
    def moves_desktops(self):
        """Whether ``migrate`` moves desktops (a backend that can, overrides it); libvirt reaches each node through
        its own connection instead."""
        return type(self).migrate is not DesktopBackend.migrate

    # -- resources -----------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def classify(self, facts, change):
        """Predict how ``ResourceChange`` would take effect on this desktop, without changing anything: return
        ``(mode, reason)`` with mode in ``APPLY_MODES``. Used by check mode and to order the work."""

    @abc.abstractmethod
    def apply(self, facts, changes):
        """Apply ``ResourceChange`` objects (already classified). Return the list with ``mode`` set to what
        actually happened (a hot-plug the guest refused raises OperationRefused, after which nothing is lost)."""

    # -- saved user state ----------------------------------------------------------------------------------------
    @abc.abstractmethod
    def snapshot_create(self, name, snapshot, with_memory=True, description=""):
        """Create a snapshot (with RAM when the disks allow it)."""

    @abc.abstractmethod
    def snapshot_revert(self, name, snapshot):
        """Revert to a snapshot."""

    @abc.abstractmethod
    def snapshot_delete(self, name, snapshot):
        """Delete a snapshot (not the disks)."""

    # -- network shadow (secondary NIC); optional, see _backends/_libvirt_shadow_nic.py --------------------------
    def _no_network_shadow(self):
        raise OperationRefused("The network shadow (secondary NIC) is not available on the %s backend yet."
                               % self.name)

    def shadow_nic(self, name):
        """``{"live": nic or None, "config": nic or None, "active", "targets"}`` of the desktop's shadow NIC."""
        self._no_network_shadow()

    def ensure_shadow_network(self, network, bridge, check_mode=False):
        """Create/start the isolated shadow network if needed; True when it changed (or would)."""
        self._no_network_shadow()

    def attach_shadow_nic(self, name, network):
        self._no_network_shadow()

    def detach_shadow_nic(self, name, network):
        self._no_network_shadow()


def summary_of(facts):
    """``DesktopFacts`` -> the summary dict of ``DesktopBackend.summaries`` (current size: live when active)."""
    size = facts.live if facts.is_active else facts.config
    return {"name": facts.name, "user": facts.user, "state": facts.state, "node": facts.node,
            "backend": facts.backend, "backend_id": facts.backend_id, "vcpus": size.vcpus,
            "memory_mib": size.memory_mib, "max_vcpus": facts.max_vcpus, "max_memory_mib": facts.max_memory_mib}


def measured(value):
    """One entry of ``utilisation_many``: the utilisation dict, or raise the error its measurement met."""
    if isinstance(value, ShadowDeskError):
        raise value
    return value
