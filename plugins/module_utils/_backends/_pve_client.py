# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the Proxmox VE API client of the proxmox backend: login, HTTP calls, tasks and locks (through proxmoxer).

``PveClient`` knows nothing of desktops: it turns every proxmoxer/requests exception into a ``ShadowDeskError``
(never a traceback), waits for the tasks (UPIDs) that mutating calls start, and retries a call while the VM holds
a transient lock. The adapter (``proxmox.py``) uses ``get`` for reads, ``run`` for changes and ``close``.

Options read from the module parameters: ``api_host``, ``api_port`` (8006), ``api_user``, ``api_token_id`` +
``api_token_secret`` or ``api_password``, ``validate_certs``, ``ca_path``, ``api_timeout`` (seconds, default 60),
``task_timeout`` and ``lock_timeout`` (default ``api_timeout``), ``poll_interval`` (0.2 s).

Decisions taken here:
- Transient locks (backup, clone, migrate, snapshot, ...) are waited for with bounded back-off (option
  ``lock_timeout``, default ``api_timeout``); the ``suspended`` lock of a hibernated VM is not transient (Conflict).
- Every task (UPID) is waited for until ``api_timeout`` (``task_timeout`` overrides it) and must end ``OK``
  (or ``WARNINGS: n``); a failed task's error carries the tail of its log.
"""

from __future__ import annotations

import time

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _deps
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _pve_config as pc
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.base import option_seconds
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (
    BackendUnavailable, Conflict, DesktopNotFound, InvalidInput, OperationRefused, ShadowDeskError,
)

TASK_LOG_LINES = 8


class _Locked(Exception):
    """Internal: the VM holds a transient lock; the operation may be retried."""

    def __init__(self, lock, message):
        super().__init__(message)
        self.lock = lock
        self.message = message


class PveClient(object):
    """One Proxmox VE API endpoint, logged in on first use."""

    def __init__(self, options):
        self.options = options
        self._api = None
        self.api_timeout = int(option_seconds(options, "api_timeout", 60))
        self.task_timeout = option_seconds(options, "task_timeout", self.api_timeout)
        self.lock_timeout = option_seconds(options, "lock_timeout", self.api_timeout)
        self.poll_interval = option_seconds(options, "poll_interval", 0.2)

    @property
    def _where(self):
        return "https://%s:%s" % (self.options.get("api_host"), self.options.get("api_port") or 8006)

    def _connect(self):
        if self._api is not None:
            return self._api
        opts = self.options
        _deps.require("requests")
        proxmoxer = _deps.require("proxmoxer")
        if not opts.get("api_host") or not opts.get("api_user"):
            raise InvalidInput("The proxmox backend needs api_host and api_user.")
        verify = bool(opts.get("validate_certs", True))
        if verify and opts.get("ca_path"):
            verify = opts["ca_path"]
        kwargs = dict(host=opts["api_host"], port=int(opts.get("api_port") or 8006), user=opts["api_user"],
                      verify_ssl=verify, timeout=self.api_timeout, backend="https", service="PVE")
        if opts.get("api_token_id"):
            token = opts["api_token_id"]
            if "!" in token:  # the full form user@realm!name
                kwargs["user"], token = token.split("!", 1)
            if not opts.get("api_token_secret"):
                raise InvalidInput("api_token_id is set but api_token_secret is missing.")
            kwargs.update(token_name=token, token_value=opts["api_token_secret"])
        elif opts.get("api_password"):
            kwargs["password"] = opts["api_password"]
        else:
            raise InvalidInput("The proxmox backend needs api_token_id + api_token_secret or api_password.")
        try:
            self._api = proxmoxer.ProxmoxAPI(**kwargs)
        # Only the client call is inside the try: whatever proxmoxer/requests raise becomes a ShadowDeskError naming
        # the call (_map_exception; unknown types -> OperationRefused), so no client traceback reaches the user.
        except Exception as exc:  # pylint: disable=broad-except
            raise self._map_exception(exc, "log in") from None
        return self._api

    def close(self):
        api, self._api = self._api, None
        if api is not None:
            session = getattr(api, "_store", {}).get("session")
            if session is not None:
                requests = _deps.require("requests")  # loaded by _connect already
                try:
                    session.close()
                except (OSError, requests.exceptions.RequestException):
                    pass  # best effort: the connection pool is dropped anyway

    # -- error mapping ------------------------------------------------------------------------------------------
    def _map_exception(self, exc, what):
        """Any exception of requests/proxmoxer -> a ShadowDeskError (never a traceback)."""
        if isinstance(exc, ShadowDeskError):
            return exc
        proxmoxer = _deps.require("proxmoxer")
        requests = _deps.require("requests")
        core = proxmoxer.core
        if isinstance(exc, core.ResourceException):
            return self._map_resource_exception(exc, what)
        if isinstance(exc, core.AuthenticationError):
            return BackendUnavailable(
                "Proxmox VE at %s refused the login of %s (wrong user or password?): %s"
                % (self._where, self.options.get("api_user"), exc), host=self._where)
        if isinstance(exc, requests.exceptions.SSLError):
            text = str(exc)
            hint = ("the server certificate could not be verified (certificate verify failed): give its CA with "
                    "ca_path, or set validate_certs=false only on a trusted lab network"
                    if "verify failed" in text or "CERTIFICATE" in text.upper()
                    else "check ca_path / validate_certs")
            return BackendUnavailable("TLS connection to Proxmox VE at %s failed: %s (%s)." % (self._where, hint, text),
                                      host=self._where)
        if isinstance(exc, requests.exceptions.Timeout):
            return BackendUnavailable("Proxmox VE at %s did not answer within %ss while trying to %s."
                                      % (self._where, self.api_timeout, what), host=self._where)
        if isinstance(exc, requests.exceptions.RequestException):
            return BackendUnavailable("Cannot reach Proxmox VE at %s to %s: %s" % (self._where, what, exc),
                                      host=self._where)
        if isinstance(exc, NotImplementedError):  # proxmoxer's config_failure
            return InvalidInput("Proxmox VE connection options are incomplete: %s" % exc)
        return OperationRefused("Unexpected error from Proxmox VE while trying to %s: %s: %s"
                                % (what, type(exc).__name__, exc))

    def _map_resource_exception(self, exc, what):
        status = getattr(exc, "status_code", 0) or 0
        reason = (getattr(exc, "content", "") or getattr(exc, "status_message", "") or "").strip()
        errors = getattr(exc, "errors", None)
        details = {"status_code": status, "reason": reason}
        if isinstance(errors, dict) and errors:
            errors = {k: (v.strip() if isinstance(v, str) else v) for k, v in errors.items()}
            details["errors"] = errors
            detail_text = "; ".join("%s: %s" % (k, v) for k, v in sorted(errors.items()))
            return OperationRefused("Proxmox VE rejected the request to %s (HTTP %s %s): %s"
                                    % (what, status, reason, detail_text), **details)
        if errors:
            details["errors"] = errors if not isinstance(errors, bytes) else errors.decode("utf-8", "replace")
        if status == 401:
            return BackendUnavailable(
                "Proxmox VE at %s rejected the credentials of %s (HTTP 401 %s): check api_user, api_token_id and "
                "api_token_secret (or api_password)." % (self._where, self.options.get("api_user"), reason),
                **details)
        if status == 403:
            return OperationRefused(
                "Proxmox VE denied permission to %s (HTTP 403 %s): give the API user/token the needed privilege "
                "(with privilege separation the token needs its own ACL)." % (what, reason), **details)
        if status in (595, 596, 597, 598, 599, 502, 503):
            return BackendUnavailable("Proxmox VE at %s cannot %s (HTTP %s %s)." % (self._where, what, status, reason),
                                      **details)
        if "does not exist" in reason and "onfiguration file" in reason:
            return DesktopNotFound("Proxmox VE: %s (while trying to %s)." % (reason, what), **details)
        lock = pc.locked_by(reason)
        if lock:
            return _Locked(lock, reason)
        return OperationRefused("Proxmox VE refused to %s (HTTP %s): %s" % (what, status, reason or exc), **details)

    # -- HTTP ---------------------------------------------------------------------------------------------------
    def _request(self, method, path, what, **params):
        api = self._connect()
        params = {k: v for k, v in params.items() if v is not None}
        try:
            return getattr(api(path), method)(**params)
        except Exception as exc:  # pylint: disable=broad-except  # client call only, mapped as in _connect
            raise self._map_exception(exc, what) from None

    def get(self, path, what, **params):
        try:
            return self._request("get", path, what, **params)
        except _Locked as locked:
            raise OperationRefused("Cannot %s: %s" % (what, locked.message), lock=locked.lock) from None

    # -- tasks --------------------------------------------------------------------------------------------------
    def _wait_task(self, upid, what):
        """Poll a UPID until it stops; return normally on OK/WARNINGS, raise otherwise."""
        if not upid or not isinstance(upid, str) or not upid.startswith("UPID:"):
            return  # synchronous answer (e.g. POST config finished within background_delay)
        node = upid.split(":")[1]
        deadline = time.monotonic() + self.task_timeout
        delay = self.poll_interval
        while True:
            status = self.get("nodes/%s/tasks/%s/status" % (node, upid), "read the task status of " + what)
            if status.get("status") == "stopped":
                break
            if time.monotonic() >= deadline:
                raise OperationRefused("The Proxmox VE task to %s is still running after %ss (UPID %s); it was not "
                                       "cancelled, check the task log." % (what, int(self.task_timeout), upid),
                                       upid=upid)
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)
        exitstatus = status.get("exitstatus") or ""
        if exitstatus == "OK" or exitstatus.startswith("WARNINGS"):
            return
        lock = pc.locked_by(exitstatus)
        if lock:
            raise _Locked(lock, exitstatus)
        lines = self._task_log_tail(node, upid, what)
        raise OperationRefused("The Proxmox VE task to %s failed: %s%s"
                               % (what, exitstatus, (" -- task log: " + " | ".join(lines)) if lines else ""),
                               upid=upid, exitstatus=exitstatus, task_log=lines)

    def _task_log_tail(self, node, upid, what):
        try:
            log = self.get("nodes/%s/tasks/%s/log" % (node, upid), "read the task log of " + what, limit=1000)
        except ShadowDeskError:
            return []
        lines = [str(item.get("t", "")) for item in sorted(log or [], key=lambda i: i.get("n", 0))]
        lines = [line for line in lines if line and line != "no content"]
        return lines[-TASK_LOG_LINES:]

    def run(self, method, path, what, vm=None, **params):
        """One mutating call: request + wait for its task, retried with back-off while the VM holds a transient
        lock (bounded by lock_timeout)."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.25
        while True:
            try:
                result = self._request(method, path, what, **params)
                self._wait_task(result, what)
                return result
            except _Locked as locked:
                if locked.lock not in pc.TRANSIENT_LOCKS:
                    raise Conflict("Cannot %s: %s (lock '%s' is not a transient lock)."
                                   % (what, locked.message, locked.lock), lock=locked.lock) from None
                if time.monotonic() + delay > deadline:
                    raise OperationRefused(
                        "Cannot %s: the VM is still locked (%s) after waiting %ss: %s. Wait for the %s job to "
                        "finish or remove a stale lock with 'qm unlock %s'."
                        % (what, locked.lock, int(self.lock_timeout), locked.message, locked.lock,
                           vm.vmid if vm else "<vmid>"), lock=locked.lock) from None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
