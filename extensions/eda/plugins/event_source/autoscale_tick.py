# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ShadowDesk autoscale tick: the clock of a rulebook that runs the autoscale round continuously."""

from __future__ import annotations

import asyncio
import datetime
import logging

DOCUMENTATION = r"""
---
short_description: Emit a tick every few seconds, so that a rulebook runs the autoscale round continuously.
description:
  - The clock of the C(shadowdesk.vdi.autoscale) rulebook - the same round as C(playbooks/autoscale.yml) under cron
    or an AWX schedule, run by a long-lived rulebook activation instead, and more often than once a minute if wanted.
  - The next tick waits until the rulebook took the previous one (its source queue holds one event), and the
    rulebook runs its actions one after another (C(execution_strategy: sequential)), so no two rounds overlap; a
    round slower than O(interval) is logged.
  - Each event is C({"shadowdesk_autoscale": {"tick", "at"}}).
options:
  interval:
    description: Seconds between ticks (at least 1).
    type: float
    default: 60
  ticks:
    description: Stop after this many ticks (0 = run until the rulebook stops); for tests and one-off runs.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Autoscale continuously
  hosts: localhost
  sources:
    - shadowdesk.vdi.autoscale_tick:
        interval: 30
  rules:
    - name: One round
      condition: event.shadowdesk_autoscale is defined
      action:
        run_playbook:
          name: shadowdesk.vdi.autoscale
"""

log = logging.getLogger("shadowdesk.autoscale_tick")


def _number(args, name, kind, default, minimum):
    value = args.get(name, default)
    try:
        value = kind(value)
    except (TypeError, ValueError):
        raise ValueError("autoscale_tick: %s must be a number, got %r" % (name, value)) from None
    if value < minimum:
        raise ValueError("autoscale_tick: %s must be at least %s, got %s" % (name, minimum, value))
    return value


async def main(queue, args):
    """Put a tick on the queue every ``interval`` seconds, skipping ticks while the last one waits."""
    interval = _number(args, "interval", float, 60.0, 1.0)
    limit = _number(args, "ticks", int, 0, 0)
    sent = 0
    while not limit or sent < limit:
        sent += 1
        at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        started = asyncio.get_running_loop().time()
        await queue.put({"shadowdesk_autoscale": {"tick": sent, "at": at}})  # waits while the last tick waits
        waited = asyncio.get_running_loop().time() - started
        if waited > interval:
            log.warning("autoscale_tick: tick %d waited %.0f s for the previous one; rounds take longer than the "
                        "interval of %.0f s", sent, waited, interval)
        await asyncio.sleep(interval)


if __name__ == "__main__":
    class _Printer:
        @staticmethod
        async def put(event):
            print(event)

    asyncio.run(main(_Printer(), {"interval": 1, "ticks": 2}))
