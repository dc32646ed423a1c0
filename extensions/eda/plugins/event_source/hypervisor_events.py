# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ShadowDesk hypervisor events: console/graphics viewers attaching to and leaving users' desktops."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import sys

DOCUMENTATION = r"""
---
short_description: Turn the hypervisor's view of console viewers into ShadowDesk connect/disconnect events.
description:
  - For users who reach their desktop without a broker that reports logins (a SPICE/VNC client, the Proxmox VE
    web console), the hypervisor itself says when a viewer is attached.
  - "libvirt: subscribes to the domain events of O(uri) over a read-only connection. A graphics client that
    completes its handshake (VNC/SPICE I(initialize)) attaches, its I(disconnect) detaches; a desktop that stops
    (guest shutdown, crash, destroy; not a save or a migration) with viewers attached ends the session."
  - "Proxmox VE: polls the running C(vncproxy)/C(spiceproxy) tasks of the nodes that hold managed desktops every
    O(poll_interval) seconds (one task per attached viewer). A failed poll changes nothing (no disconnect is
    guessed from an unreachable API)."
  - A session starts when the first viewer of a desktop attaches and ends when the last one leaves; a second viewer
    is no event. Only desktops managed by ShadowDesk count; the user is the desktop's owner.
  - Each event has the shape of the C(shadowdesk.vdi.broker_webhook) source,
    C({"shadowdesk_session": {"action": "connect"|"disconnect", "user", "desktop", "source": "libvirt"|"proxmox",
    "received_at", "clients", "detail"}}), so the rulebook C(shadowdesk.vdi.sessions) handles both.
  - Viewers attached before the source started are not reported (there is no event for them).
options:
  enabled:
    description: When false the source starts and stays idle (a rulebook that takes broker events only).
    type: bool
    default: true
  poll_interval:
    description: Seconds between two polls of the Proxmox VE task list.
    type: float
    default: 2
  reconnect_interval:
    description: Seconds between attempts to reach the hypervisor again after the connection was lost.
    type: float
    default: 5
  backend:
    description:
      - Hypervisor backend and connection options, as the modules take them (C(backend), C(uri), C(api_host),
        C(api_port), C(api_user), C(api_token_id), C(api_token_secret), C(api_password), C(validate_certs),
        C(ca_path), C(node), C(api_timeout)) with the same environment fallbacks.
    type: str
    default: libvirt
"""

EXAMPLES = r"""
- name: Console viewers
  hosts: localhost
  sources:
    - shadowdesk.vdi.hypervisor_events:
        backend: proxmox
        api_host: pve1.example.com
        api_user: shadowdesk@pve
        api_token_id: eda
        # api_token_secret from the environment: PROXMOX_TOKEN_SECRET
  rules:
    - name: Disconnect
      condition: event.shadowdesk_session.action == "disconnect"
      action:
        run_playbook:
          name: shadowdesk.vdi.disconnect
          extra_vars:
            user: "{{ event.shadowdesk_session.user }}"
            desktop: "{{ event.shadowdesk_session.desktop }}"
"""


def _import_collection():
    """Make ``ansible_collections.shadowdesk.vdi`` importable (see broker_webhook.py: runpy does not)."""
    try:
        import ansible_collections.shadowdesk.vdi.plugins.module_utils._errors  # noqa: F401 pylint: disable=unused-import
    except ImportError:
        here = os.path.abspath(__file__)  # not resolved: the path through ansible_collections/ is what we need
        sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(here), *[os.pardir] * 7)))


_import_collection()

# pylint: disable=wrong-import-position
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends._libvirt_events import (  # noqa: E402
    LibvirtEventWatcher,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.select import select_backend  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.console_clients import (  # noqa: E402
    ClientCounter, client_transitions,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import ShadowDeskError  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._eda_source import backend_options, option  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._session_events import session_event  # noqa: E402

log = logging.getLogger("shadowdesk.hypervisor_events")

# libvirt's VIR_DOMAIN_EVENT_STOPPED details that are not the end of a user's session: our own save, a migration.
_STOPPED_NOT_ENDED = {3: "migrated", 4: "saved"}


class _Owners(object):
    """Desktop name -> owning user (None: not a ShadowDesk desktop), asked from the backend on one thread."""

    def __init__(self, backend):
        self.backend = backend
        self._cache = {}
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="shadowdesk-owners")

    async def call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def user_of(self, name):
        if name not in self._cache:
            try:
                facts = await self.call(self.backend.get, name)
            except ShadowDeskError as exc:
                log.warning("hypervisor events: cannot read desktop %s: %s", name, exc)
                return None  # not cached: asked again at its next event
            self._cache[name] = facts.user if facts is not None and facts.tags else None
        return self._cache[name]

    def forget(self, name):
        self._cache.pop(name, None)

    def close(self):
        self.backend.close()
        self._pool.shutdown(wait=False)


async def _emit(queue, owners, transitions, source, detail):
    for name, action, clients in transitions:
        user = await owners.user_of(name)
        if user is None:
            continue
        await queue.put(session_event(action, user, name, source, clients=clients, detail=detail))


async def _keep_open(watcher, owners, interval):
    """Open the libvirt watcher, and again whenever the daemon went away."""
    while True:
        if not watcher.alive():
            try:
                await owners.call(watcher.open)
                log.info("hypervisor events: watching libvirt at %s", watcher.uri)
            except ShadowDeskError as exc:
                log.warning("hypervisor events: %s; retrying in %ss", exc, interval)
        await asyncio.sleep(interval)


async def _watch_libvirt(queue, options, args):
    loop = asyncio.get_running_loop()
    raw = asyncio.Queue()
    watcher = LibvirtEventWatcher(options["uri"], lambda *item: loop.call_soon_threadsafe(raw.put_nowait, item))
    owners = _Owners(select_backend("libvirt", options))
    counter = ClientCounter()
    keeper = asyncio.ensure_future(_keep_open(watcher, owners, option(args, "reconnect_interval", "float", 5.0)))
    try:
        while True:
            kind, name, what, detail = await raw.get()
            if kind == "graphics" and what == "initialize":
                await _emit(queue, owners, counter.attach(name, detail), "libvirt", {"client": detail})
            elif kind == "graphics" and what == "disconnect":
                await _emit(queue, owners, counter.detach(name, detail), "libvirt", {"client": detail})
            elif kind == "lifecycle" and what in ("stopped", "crashed"):
                clients = counter.count(name)
                counter.forget(name)
                if clients and not (what == "stopped" and detail in _STOPPED_NOT_ENDED):
                    await _emit(queue, owners, client_transitions({name: clients}, {}), "libvirt",
                                {"lifecycle": what, "lifecycle_detail": detail})
            elif kind == "lifecycle" and what in ("defined", "undefined"):
                owners.forget(name)  # a redefinition may change the owner
    finally:
        keeper.cancel()
        watcher.close()
        owners.close()


async def _poll_proxmox(queue, options, args):
    owners = _Owners(select_backend("proxmox", options))
    interval = option(args, "poll_interval", "float", 2.0)
    before = None
    try:
        while True:
            try:
                clients = await owners.call(owners.backend.console_clients)
            except ShadowDeskError as exc:
                log.warning("hypervisor events: cannot read the Proxmox VE task list: %s", exc)
            else:
                counts = {name: len(tasks) for name, tasks in clients.items()}
                if before is not None:  # the first poll is the baseline: viewers already there made no event
                    for name, action, count in client_transitions(before, counts):
                        viewers = sorted({t.get("user") for t in clients.get(name, ())} - {None})
                        await _emit(queue, owners, [(name, action, count)], "proxmox", {"viewers": viewers})
                before = counts
            await asyncio.sleep(interval)
    finally:
        owners.close()


async def main(queue, args):
    """Watch until the rulebook stops."""
    if not option(args, "enabled", "bool", True):
        await asyncio.Event().wait()
        return
    options = backend_options(args)
    if options["backend"] == "libvirt":
        await _watch_libvirt(queue, options, args)
    else:
        await _poll_proxmox(queue, options, args)
