# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""ShadowDesk broker webhook: connection brokers report logins over HTTP; a connect wakes the desktop at once."""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import sys

DOCUMENTATION = r"""
---
short_description: Receive connection-broker logins and logouts, and wake the user's desktop at once.
description:
  - Listens for HTTP C(POST) requests from a connection broker (Apache Guacamole, a portal, a login script) with a
    JSON body C({"user": "alice", "action": "connect"|"disconnect", "desktop": "desk-alice", "broker": "guac"}).
    C(desktop) is optional when the user has one desktop; other fields travel in C(extra).
  - Every accepted request puts one event on the queue,
    C({"shadowdesk_session": {"action", "user", "desktop", "source": "webhook", "received_at", "broker",
    "fast_path", "extra"}}), the same shape as the C(shadowdesk.vdi.hypervisor_events) source, for the rulebook
    C(shadowdesk.vdi.sessions).
  - "Fast path: on C(connect) the source wakes the desktop itself before answering (resume a paused shadow,
    restore a saved one, cold-boot only without saved state), through the collection's backend interface over a
    connection it keeps open, so the broker does not wait for a playbook to start. It answers C(200) with
    C({"desktop", "path": "hit"|"paused"|"saved"|"cold", "seconds"}) when the hypervisor reports the desktop
    running, and then queues the event; the rulebook's playbook does the rest (full size, recording). It never
    saves, shrinks or stops anything."
  - Answers C(202) for a disconnect (the rulebook's playbook releases the desktop), C(404) for an unknown user or
    desktop, C(400) when the desktop belongs to another user, C(502)/C(503) when the hypervisor failed or is
    unreachable (the event is still queued so the playbook can converge and report).
  - Malformed or unauthenticated requests get a 4xx answer and never reach the queue: a missing or wrong token or
    signature (401), a body that is not a JSON object of that form (400), over C(max_body) bytes (413), without
    C(Content-Length) (411), not C(application/json) (415), too slow (408).
  - C(GET /healthz) answers C(200) without authentication.
options:
  host:
    description: Address to listen on. Loopback unless you put the broker elsewhere; then use TLS.
    type: str
    default: 127.0.0.1
  port:
    description: TCP port to listen on.
    type: int
    default: 5080
  path:
    description: URL path the broker posts to.
    type: str
    default: /session
  token:
    description:
      - Shared bearer token; the broker sends C(Authorization: Bearer <token>). At least 16 characters.
      - Default from the environment variable E(SHADOWDESK_WEBHOOK_TOKEN).
      - Give exactly one of O(token) and O(hmac_secret).
    type: str
  hmac_secret:
    description:
      - Secret for HMAC-SHA256 signatures of the body; the broker sends C(X-ShadowDesk-Signature: sha256=<hex>).
        At least 16 characters. Default from E(SHADOWDESK_WEBHOOK_HMAC_SECRET).
    type: str
  signature_header:
    description: Header that carries the HMAC signature.
    type: str
    default: X-ShadowDesk-Signature
  certfile:
    description: PEM certificate (chain) to serve HTTPS. Without it the listener speaks plain HTTP.
    type: path
  keyfile:
    description: PEM private key of O(certfile).
    type: path
  max_body:
    description: Largest accepted body in bytes.
    type: int
    default: 8192
  read_timeout:
    description: Seconds a client has to send its whole request.
    type: float
    default: 10
  fast_path:
    description: Wake the desktop on C(connect) before answering. When false, connects are only queued (C(202)).
    type: bool
    default: true
  handoff_delay:
    description:
      - Seconds between the answer of a woken C(connect) and queueing its event, that is, starting the rulebook's
        playbook. A playbook start costs one to two CPU-seconds; where the rulebook runs on the hypervisor itself
        (the embedded default, a small site) it would take the host's CPU from the desktop the user is just
        looking at. The full size then arrives that much later. C(0) queues at once.
    type: float
    default: 1.0
  wake_timeout:
    description: Seconds a wake may wait for another operation on the desktop (e.g. a save in progress).
    type: float
    default: 120
  backend:
    description:
      - Hypervisor backend and connection options, as the modules take them (C(backend), C(uri), C(api_host),
        C(api_port), C(api_user), C(api_token_id), C(api_token_secret), C(api_password), C(validate_certs),
        C(ca_path), C(node), C(api_timeout)) with the same environment fallbacks
        (E(SHADOWDESK_BACKEND), E(LIBVIRT_DEFAULT_URI), E(PROXMOX_HOST), E(PROXMOX_TOKEN_SECRET), ...).
    type: str
    default: libvirt
"""

EXAMPLES = r"""
- name: Broker logins
  hosts: localhost
  sources:
    - shadowdesk.vdi.broker_webhook:
        host: 127.0.0.1
        port: 5080
        # token from the environment: SHADOWDESK_WEBHOOK_TOKEN
        uri: qemu:///system
  rules:
    - name: Reconnect
      condition: event.shadowdesk_session.action == "connect"
      action:
        run_playbook:
          name: shadowdesk.vdi.reconnect
          extra_vars:
            user: "{{ event.shadowdesk_session.user }}"
"""


def _import_collection():
    """Make ``ansible_collections.shadowdesk.vdi`` importable.

    ansible-rulebook runs a source file with ``runpy.run_path``, which does not put the collection on the import
    path; the collection's own code lives three directories up from this file's ``ansible_collections`` root.
    """
    try:
        import ansible_collections.shadowdesk.vdi.plugins.module_utils._errors  # noqa: F401 pylint: disable=unused-import
    except ImportError:
        here = os.path.abspath(__file__)  # not resolved: the path through ansible_collections/ is what we need
        sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(here), *[os.pardir] * 7)))


_import_collection()

# pylint: disable=wrong-import-position
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.select import select_backend  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (  # noqa: E402
    BackendUnavailable, DesktopNotFound, InvalidInput, ShadowDeskError,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._session_wake import DesktopWaker  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._eda_source import backend_options, option  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._session_events import (  # noqa: E402
    now_iso, session_event,
)
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._webhook_auth import WebhookAuth  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._webhook_http import WebhookListener  # noqa: E402

log = logging.getLogger("shadowdesk.webhook")


def _auth(args):
    token = option(args, "token", "str", env=["SHADOWDESK_WEBHOOK_TOKEN"])
    secret = option(args, "hmac_secret", "str", env=["SHADOWDESK_WEBHOOK_HMAC_SECRET"])
    if bool(token) == bool(secret):
        raise InvalidInput("broker_webhook needs exactly one of token (SHADOWDESK_WEBHOOK_TOKEN) and hmac_secret "
                           "(SHADOWDESK_WEBHOOK_HMAC_SECRET)")
    try:
        if token:
            return WebhookAuth("token", token)
        return WebhookAuth("hmac", secret, option(args, "signature_header", "str", "X-ShadowDesk-Signature"))
    except ValueError as exc:
        raise InvalidInput("broker_webhook: %s" % exc) from None


def _tls(args):
    certfile, keyfile = option(args, "certfile", "path"), option(args, "keyfile", "path")
    if not certfile:
        if keyfile:
            raise InvalidInput("broker_webhook: keyfile is set but certfile is not")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise InvalidInput("broker_webhook: cannot load certfile/keyfile: %s" % exc) from None
    return context


class _Handler(object):
    """Turns one accepted broker request into (answer, queued event)."""

    def __init__(self, queue, waker, handoff_delay=0.0):
        self.queue = queue
        self.waker = waker
        self.handoff_delay = handoff_delay
        self._handoffs = set()  # queued-later events in flight (a task without a reference may be collected)

    def _queue_after_answer(self, event):
        """Queue a woken connect's event once the answer is out and the guest had the host for a moment."""
        async def handoff():
            await asyncio.sleep(self.handoff_delay)
            await self.queue.put(event)

        task = asyncio.ensure_future(handoff())
        self._handoffs.add(task)
        task.add_done_callback(self._handoffs.discard)

    async def __call__(self, request):
        received_at = now_iso()
        fast, status = None, 202
        desktop = request["desktop"]
        if request["action"] == "connect" and self.waker is not None:
            loop = asyncio.get_running_loop()
            try:
                fast = await loop.run_in_executor(None, self.waker.wake, request["user"], desktop)
            except DesktopNotFound as exc:
                return 404, {"error": str(exc)}
            except InvalidInput as exc:
                return 400, {"error": str(exc)}
            except ShadowDeskError as exc:
                # The desktop exists but could not be woken now: say why, and let the playbook try to converge.
                status = 503 if isinstance(exc, BackendUnavailable) else 502
                fast = {"error": str(exc)}
                log.error("webhook: waking %s's desktop failed: %s", request["user"], exc)
            else:
                status, desktop = 200, fast["desktop"]
        event = session_event(request["action"], request["user"], desktop, "webhook", received_at,
                              broker=request["broker"], fast_path=fast, extra=request["extra"] or None,
                              peer=request["peer"])
        if status == 200 and self.handoff_delay > 0:
            self._queue_after_answer(event)
        else:
            await self.queue.put(event)
        answer = {"action": request["action"], "user": request["user"], "desktop": desktop, "queued": True}
        if fast:
            answer.update(fast)
        return status, answer


async def main(queue, args):
    """Run the listener until the rulebook stops."""
    auth = _auth(args)
    context = _tls(args)
    waker = None
    if option(args, "fast_path", "bool", True):
        options = backend_options(args)
        waker = DesktopWaker(lambda: select_backend(options["backend"], options),
                             timeout=option(args, "wake_timeout", "float", 120.0))
    listener = WebhookListener(
        _Handler(queue, waker, handoff_delay=max(0.0, option(args, "handoff_delay", "float", 1.0))), auth,
        host=option(args, "host", "str", "127.0.0.1"), port=option(args, "port", "int", 5080),
        path=option(args, "path", "str", "/session"), ssl_context=context,
        max_body=option(args, "max_body", "int", 8192), read_timeout=option(args, "read_timeout", "float", 10.0))
    await listener.start()
    log.info("shadowdesk broker webhook listening on %s:%s%s (%s)", listener.host, listener.port, listener.path,
             "https" if context else "http")
    try:
        await asyncio.Event().wait()  # serve until ansible-rulebook cancels the source
    finally:
        await listener.close()
        if waker is not None:
            waker.close()
