"""A Proxmox VE API stand-in for tests: real HTTPS on loopback, PVE's schema, qemu-server semantics.

Layers (top to bottom):

* ``_HttpHandler``       HTTP/TLS transport: parses query/form/JSON, writes PVE-shaped responses.
* ``PveStandIn.handle``  auth, failure injection, path resolution and schema validation (``pve_schema``).
* ``_ROUTES`` handlers   per-endpoint semantics on the in-memory cluster state (VMs, tasks, locks).

Everything a request changes happens under one lock; asynchronous operations are *tasks* that stay
``running`` for ``task_duration`` seconds and apply their effect when they finish. Tasks finish lazily
(on the next request or inspection call), which keeps the server deterministic and free of timers.
"""
from __future__ import annotations

import copy
import hashlib
import http.server
import json
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable

if __package__ in (None, ""):  # run as a script: python tests/stand_ins/pve_api_server.py
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import pve_schema as schema_mod  # type: ignore[no-redef]
    import pve_errors  # type: ignore[no-redef]
    import pve_firewall  # type: ignore[no-redef]
else:
    from . import pve_errors, pve_firewall
    from . import pve_schema as schema_mod

ParameterError = schema_mod.ParameterError
PveError = pve_errors.PveError
_fail = pve_errors.fail
_param_error = pve_errors.param_error
MIB = 1024 * 1024
GIB = 1024 * MIB

# Options qemu-server changes on a running VM without any device work ($fast_plug_option).
FAST_PLUG = {"name", "description", "tags", "onboot", "protection", "startup", "hookscript",
             "migrate_downtime", "migrate_speed", "vmstatestorage", "shares", "lock"}
# NIC options whose change needs the device replugged (vmconfig_update_net); every other change of an existing
# NIC that keeps a bridge is applied in place (tap_plug/tap_rate_limit/set_link) without the hot-plug feature.
NET_REPLUG_KEYS = {"model", "macaddr", "queues", "mtu"}
# Disk options vmconfig_update_disk cannot change on a running VM with the same volume ("skip" = stays pending);
# other same-volume changes are live (throttling via block_set_io_throttle, the rest config-only).
DISK_COLD_KEYS = {"aio", "discard", "iothread", "queues", "product", "cache", "ssd", "vendor", "ro"}
# $confdesc keys json_config_properties leaves out of the create/set parameters; option_exists() still knows them,
# so they may be named in 'delete'/'revert'.
CONFDESC_ONLY = {"parent", "snaptime", "vmstate", "runningmachine", "runningcpu", "meta"}
# Memory.pm: static memory with memory hotplug, maximum for the default CPU model on a >= 40 physical bits host.
STATIC_MEMORY_MIB = 1024
MAX_HOTPLUG_MEMORY_MIB = 1 << (40 - 21)
DRIVE_RE = re.compile(r"^(ide|sata|scsi|virtio|efidisk|tpmstate|unused)(\d+)$")


# --------------------------------------------------------------------------------------------------
# State
# --------------------------------------------------------------------------------------------------


@dataclass
class Node:
    name: str
    cpus: int
    memory: int                     # bytes
    online: bool = True


@dataclass
class Vm:
    vmid: int
    node: str
    config: dict[str, str]
    pending: dict[str, str] = field(default_factory=dict)
    pending_delete: set[str] = field(default_factory=set)
    snapshots: dict[str, dict] = field(default_factory=dict)
    parent: str | None = None       # current snapshot parent
    status: str = "stopped"
    qmpstatus: str = "stopped"
    started: float = 0.0            # time.time() at start
    busy_upid: str | None = None    # task holding the config file lock
    refuse_hotplug: str | None = None
    agent_users: list[dict] | None = None  # what guest-get-users answers; None = no agent running in the guest

    def public(self) -> dict:
        return {
            "vmid": self.vmid, "node": self.node, "config": dict(self.config),
            "pending": dict(self.pending), "pending_delete": sorted(self.pending_delete),
            "snapshots": copy.deepcopy(self.snapshots), "status": self.status,
            "qmpstatus": self.qmpstatus, "lock": self.config.get("lock"),
        }


@dataclass
class Task:
    upid: str
    node: str
    type: str
    id: str
    user: str
    pid: int
    pstart: int
    starttime: int
    deadline: float
    action: Callable[[], None] | None = None
    on_fail: Callable[[], None] | None = None
    vmid: int | None = None
    status: str = "running"
    exitstatus: str | None = None
    endtime: int | None = None
    fail_with: str | None = None
    log: list[str] = field(default_factory=list)

    def public(self) -> dict:
        out = {"upid": self.upid, "node": self.node, "pid": self.pid, "pstart": self.pstart,
               "starttime": self.starttime, "type": self.type, "id": self.id, "user": self.user,
               "status": self.status}
        if self.status == "stopped":
            out["exitstatus"] = self.exitstatus
            out["endtime"] = self.endtime
        return out


def current_memory(value: str | None) -> int:
    """MiB from PVE 9's memory property string ``[current=]<MiB>`` (default 512)."""
    if not value:
        return 512
    for part in value.split(","):
        if "=" not in part:
            return int(part)
        key, val = part.split("=", 1)
        if key == "current":
            return int(val)
    return 512


def _bool(value: Any) -> bool:
    return schema_mod.parse_boolean(value) == 1 if value is not None else False


def _to_config_string(value: Any) -> str:
    """PVE stores booleans as 0/1 and keeps everything else as the given text."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# --------------------------------------------------------------------------------------------------
# The stand-in
# --------------------------------------------------------------------------------------------------


class PveStandIn:
    """In-memory PVE cluster behind a real HTTPS API server on 127.0.0.1."""

    def __init__(self, nodes=("pve1", "pve2"), *, node_cpus: int = 16, node_memory_gib: int = 64,
                 storages=("local", "local-lvm"), task_duration: float = 0.1,
                 file_lock_timeout: float = 10.0, port: int = 0, state_dir: str | None = None,
                 schema_path: str | None = None, token_user: str = "shadowdesk@pve",
                 token_name: str = "automation", token_value: str | None = None,
                 password: str | None = None, root_password: str | None = None):
        self.schema = schema_mod.load_schema(schema_path or schema_mod.DEFAULT_SCHEMA_PATH)
        self._config_props = self.schema.method_info(
            "/nodes/{node}/qemu/{vmid}/config", "PUT")["parameters"]["properties"]
        self._config_returns = self.schema.method_info(
            "/nodes/{node}/qemu/{vmid}/config", "GET")["returns"]["properties"]
        self.nodes = {n: Node(n, node_cpus, node_memory_gib * GIB) for n in nodes}
        self.storages = tuple(storages)
        self.task_duration = task_duration
        self.task_durations: dict[str, float] = {}
        self.file_lock_timeout = file_lock_timeout
        self.token_user = token_user
        self.token_name = token_name
        self.token_value = token_value or secrets.token_hex(16)
        self.password = password or secrets.token_urlsafe(12)
        self.root_password = root_password or secrets.token_urlsafe(12)
        self.users = {token_user: self.password, "root@pam": self.root_password}
        self.tokens = {(token_user, token_name): self.token_value}
        self.tickets: dict[str, tuple[str, str]] = {}   # ticket -> (user, csrf)
        self.vms: dict[int, Vm] = {}
        self.firewall = pve_firewall.FirewallState()
        self.tasks: list[Task] = []
        self.request_log: list[dict] = []
        self.internal_errors: list[dict] = []   # requests that hit a stand-in bug (tests assert empty)
        self._held_locks: dict[int, tuple[str, float | None]] = {}
        self._task_failures: list[tuple[str, int | None, str]] = []
        self._request_failures: list[dict] = []
        self._pid = 100000
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._port = port
        self._state_dir = state_dir
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._tmp = None
        self.ca_path: str = ""

    # ---------------------------------------------------------------- lifecycle / connection info
    def start(self) -> "PveStandIn":
        import trustme  # test-only dependency, imported lazily so the schema layer works without it
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        if self._state_dir is None:
            import tempfile
            self._tmp = tempfile.TemporaryDirectory(prefix="pve-stand-in-")
            state_dir = self._tmp.name
        else:
            state_dir = self._state_dir
            os.makedirs(state_dir, exist_ok=True)
        self.ca_path = os.path.join(state_dir, "pve-stand-in-ca.pem")
        ca.cert_pem.write_to_path(self.ca_path)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self._httpd = _TlsServer(("127.0.0.1", self._port), _HttpHandler, ctx, self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="pve-stand-in", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "PveStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    host = "127.0.0.1"

    @property
    def port(self) -> int:
        return self._httpd.server_address[1] if self._httpd else self._port

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}/api2/json"

    @property
    def token_header(self) -> str:
        return f"PVEAPIToken={self.token_user}!{self.token_name}={self.token_value}"

    def connection_info(self) -> dict:
        return {"url": self.url, "host": self.host, "port": self.port, "ca_path": self.ca_path,
                "token_user": self.token_user, "token_name": self.token_name,
                "token_value": self.token_value, "password": self.password,
                "root_password": self.root_password, "nodes": list(self.nodes)}

    # ---------------------------------------------------------------- preload helpers
    def add_vm(self, node: str, vmid: int, name: str | None = None, *, status: str = "stopped",
               **config: Any) -> dict:
        """Create a VM directly (no task). ``config`` values use PVE config syntax."""
        with self._lock:
            if node not in self.nodes:
                raise ValueError(f"unknown node {node}")
            if vmid in self.vms:
                raise ValueError(f"VM {vmid} exists")
            cfg = {"memory": "2048", "cores": "1", "sockets": "1", "ostype": "l26",
                   "scsihw": "virtio-scsi-single", "smbios1": f"uuid=00000000-0000-4000-8000-{vmid:012d}",
                   "vmgenid": f"00000000-0000-4000-8000-{vmid:012d}"}
            if name:
                cfg["name"] = name
            cfg.update({k: _to_config_string(v) for k, v in config.items()})
            if not any(DRIVE_RE.match(k) for k in cfg):   # a desktop VM normally has a system disk
                cfg["scsi0"] = f"local-lvm:vm-{vmid}-disk-0,size=32G"
            for key in list(cfg):
                if key.startswith("net"):
                    cfg[key] = self._normalize_net(vmid, key, cfg[key])
            vm = Vm(vmid, node, cfg)
            if status == "running":
                problem = _start_problem(cfg)
                if problem:   # real PVE cannot have such a VM running (config_to_command refuses it)
                    raise ValueError(f"VM {vmid} could not run: {problem}")
                vm.status, vm.qmpstatus, vm.started = "running", "running", time.time()
            self.vms[vmid] = vm
            return vm.public()

    def add_template(self, node: str, vmid: int, name: str, **config: Any) -> dict:
        config.setdefault("scsi0", f"local-lvm:base-{vmid}-disk-0,size=32G")
        return self.add_vm(node, vmid, name, template=1, **config)

    # ---------------------------------------------------------------- failure injection hooks
    def fail_next_task(self, task_type: str, exitstatus: str = "command failed", vmid: int | None = None) -> None:
        """The next task of ``task_type`` (e.g. 'qmstart') for ``vmid`` (any if None) fails, no effect."""
        with self._lock:
            self._task_failures.append((task_type, vmid, exitstatus))

    def fail_next_request(self, path_regex: str, status: int = 500, message: str = "Internal Server Error",
                          method: str | None = None, times: int = 1) -> None:
        """The next ``times`` requests whose API path (without /api2/json) matches fail with ``status``."""
        with self._lock:
            self._request_failures.append({"rx": re.compile(path_regex), "status": status,
                                           "message": message, "method": method, "times": times})

    def hold_lock(self, vmid: int, lock: str = "backup", seconds: float | None = 1.0) -> None:
        """Set config ``lock`` on ``vmid`` (like a running vzdump) and drop it after ``seconds``."""
        with self._lock:
            self.vms[vmid].config["lock"] = lock
            self._held_locks[vmid] = (lock, None if seconds is None else time.monotonic() + seconds)

    def release_lock(self, vmid: int) -> None:
        with self._lock:
            self._held_locks.pop(vmid, None)
            self.vms[vmid].config.pop("lock", None)

    def set_task_duration(self, seconds: float, task_type: str | None = None) -> None:
        with self._lock:
            if task_type is None:
                self.task_duration = seconds
            else:
                self.task_durations[task_type] = seconds

    def refuse_hotplug(self, vmid: int, refuse: bool = True,
                       reason: str = "Bus 'pci.1' does not support hotplugging") -> None:
        """Guest refuses device hotplug: device_add fails, the change stays pending."""
        with self._lock:
            self.vms[vmid].refuse_hotplug = reason if refuse else None

    def open_console(self, vmid: int, kind: str = "vncproxy", user: str = "root@pam") -> str:
        """A console client connects (what POST .../vncproxy + the websocket does): a running task of ``kind``."""
        with self._lock:
            vm = self.vms[vmid]
            return self._console_task(vm, kind, user)

    def close_console(self, upid: str) -> None:
        """The console client disconnects: its proxy task ends OK."""
        with self._lock:
            for task in self.tasks:
                if task.upid == upid and task.status == "running":
                    task.deadline = 0
            self._advance()

    def set_agent_users(self, vmid: int, users: list[dict] | None) -> None:
        """What the guest agent reports as logged in (``[{"user", "login-time"}]``); None = no agent answering."""
        with self._lock:
            self.vms[vmid].agent_users = None if users is None else [dict(u) for u in users]

    def _console_task(self, vm: Vm, kind: str, user: str) -> str:
        if vm.status != "running":
            raise _fail(f"VM {vm.vmid} not running")
        return self._lasting_task(vm, kind, user)

    def _lasting_task(self, vm: Vm, kind: str, user: str) -> str:
        upid = self._new_task(vm.node, kind, vm.vmid, user)
        self.tasks[-1].deadline = float("inf")  # a proxy task runs as long as its connection
        return upid

    # ---------------------------------------------------------------- inspection
    def vm(self, vmid: int) -> dict:
        with self._lock:
            self._advance()
            return self.vms[vmid].public()

    def snapshot_state(self) -> dict:
        """Deep copy of everything clients can change (VMs), for before/after comparisons."""
        with self._lock:
            self._advance()
            return {"vms": {vmid: vm.public() for vmid, vm in sorted(self.vms.items())},
                    "firewall": self.firewall.public()}

    def task_list(self) -> list[dict]:
        with self._lock:
            self._advance()
            return [t.public() | {"exitstatus": t.exitstatus, "log": list(t.log)} for t in self.tasks]

    def requests(self, method: str | None = None, path_regex: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(r) for r in self.request_log
                    if (method is None or r["method"] == method)
                    and (path_regex is None or re.search(path_regex, r["path"]))]

    def wait_tasks(self, timeout: float = 10.0) -> None:
        """Block until no task is running (helper for tests that do not poll)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self._lock:
                self._advance()
                if all(t.status == "stopped" for t in self.tasks):
                    return
            time.sleep(0.01)
        raise TimeoutError("tasks still running")

    # ---------------------------------------------------------------- request entry point
    def handle(self, method: str, path: str, params: dict[str, Any], headers: dict[str, str],
               cookies: dict[str, str]) -> tuple[int, str, Any, dict | None]:
        """Process one API request. Returns (status, reason, data, errors)."""
        entry = {"time": time.time(), "method": method, "path": path,
                 "params": {k: v for k, v in params.items() if k != "password"}}
        with self._lock:
            self.request_log.append(entry)
            try:
                self._advance()
                data = self._dispatch(method, path, params, headers, cookies, entry)
                status, reason, errors = 200, "OK", None
            except ParameterError as exc:
                status, reason, data, errors = 400, "Parameter verification failed.", None, exc.errors
            except schema_mod.UnsupportedFormat as exc:
                status, reason, data, errors = 501, str(exc), None, None
            except PveError as exc:
                status, reason, data, errors = exc.status, exc.message, None, exc.errors
            except Exception as exc:  # a stand-in bug: answer (so clients don't hang) and record it
                import traceback
                entry["traceback"] = traceback.format_exc()
                self.internal_errors.append(entry)
                status, reason, data, errors = 500, f"stand-in internal error: {type(exc).__name__}: {exc}", None, None
            entry["status"] = status
            return status, reason, data, errors

    def _dispatch(self, method, path, params, headers, cookies, entry) -> Any:
        if path == "/access/ticket" and method == "POST":
            return self._login(self._validate("/access/ticket", "POST", params))
        user = self._authenticate(method, headers, cookies)
        entry["user"] = user
        for inj in self._request_failures:
            if inj["rx"].search(path) and (inj["method"] in (None, method)) and inj["times"] > 0:
                inj["times"] -= 1
                raise _fail(inj["message"], inj["status"])
        resolved = self.schema.resolve(path)
        if resolved is None or method not in resolved.endpoint.methods:
            raise _fail(f"Method '{method} /{path.strip('/')}' not implemented", 501)
        template = resolved.endpoint.path
        merged = dict(params)
        for k, v in resolved.path_params.items():
            merged[k] = urllib.parse.unquote(v)
        args = self._validate(template, method, merged)
        if "node" in args and args["node"] not in self.nodes:
            raise _fail(f"hostname lookup '{args['node']}' failed - failed to get address info for: "
                        f"{args['node']}: Name or service not known", 500)
        handler = _ROUTES.get((method, template))
        if handler is None:
            return self._unimplemented(method, template)
        ctx = _Ctx(self, user, args, dict(params))
        return handler(self, ctx)

    def _validate(self, template: str, method: str, params: dict) -> dict:
        return self.schema.validate(template, method, params)

    def _unimplemented(self, method: str, template: str) -> Any:
        """Valid request to an endpoint without state here: GETs get an empty, well-typed answer."""
        if method != "GET":
            raise _fail(f"stand-in: '{method} {template}' is validated but not implemented", 501)
        rtype = (self.schema.method_info(template, method).get("returns") or {}).get("type")
        return [] if rtype == "array" else {} if rtype == "object" else None

    # ---------------------------------------------------------------- auth
    def _login(self, args: dict) -> dict:
        username = args["username"]
        if "@" not in username and args.get("realm"):
            username = f"{username}@{args['realm']}"
        known = self.users.get(username)
        ticket_user = self.tickets.get(args["password"], (None,))[0]  # ticket renewal
        if not ((known is not None and secrets.compare_digest(known, args["password"])) or ticket_user == username):
            raise _fail("authentication failure", 401)
        ticket = f"PVE:{username}:{int(time.time()):08X}::{secrets.token_urlsafe(32)}"
        csrf = f"{int(time.time()):08X}:{secrets.token_urlsafe(24)}"
        self.tickets[ticket] = (username, csrf)
        return {"username": username, "ticket": ticket, "CSRFPreventionToken": csrf,
                "cap": {"vms": {"VM.PowerMgmt": 1, "VM.Config.CPU": 1}}, "clustername": "shadowdesk"}

    def _authenticate(self, method: str, headers: dict[str, str], cookies: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        if auth.startswith("PVEAPIToken="):
            m = re.fullmatch(r"PVEAPIToken=([^!\s]+@[^!\s]+)!([A-Za-z][A-Za-z0-9._-]*)[=:](\S+)", auth.strip())
            if not m:
                raise _fail("invalid token value!", 401)
            user, name, secret = m.groups()
            expected = self.tokens.get((user, name))
            if expected is None or not secrets.compare_digest(expected, secret):
                raise _fail("invalid token value!", 401)
            return f"{user}!{name}"
        ticket = cookies.get("PVEAuthCookie")
        if ticket:
            known = self.tickets.get(ticket)
            if known is None:
                raise _fail("invalid PVE ticket", 401)
            if method != "GET" and headers.get("csrfpreventiontoken") != known[1]:
                raise _fail("Permission denied - invalid csrf token", 401)
            return known[0]
        raise _fail("No ticket", 401)

    # ---------------------------------------------------------------- tasks
    def _new_task(self, node: str, task_type: str, vmid: int | str, user: str, *,
                  action: Callable[[], None] | None = None, on_fail: Callable[[], None] | None = None,
                  file_lock: int | None = None) -> str:
        self._pid += 1
        now = int(time.time())
        pstart = int(time.monotonic() * 100) & 0xFFFFFFFF
        upid = f"UPID:{node}:{self._pid:08X}:{pstart:08X}:{now:08X}:{task_type}:{vmid}:{user}:"
        duration = self.task_durations.get(task_type, self.task_duration)
        task = Task(upid, node, task_type, str(vmid), user, self._pid, pstart, now,
                    time.monotonic() + duration, action, on_fail,
                    vmid=int(vmid) if str(vmid).isdigit() else None)
        for i, (ftype, fvmid, status) in enumerate(self._task_failures):
            if ftype == task_type and fvmid in (None, task.vmid):
                task.fail_with = status
                del self._task_failures[i]
                break
        if file_lock is not None:
            self.vms[file_lock].busy_upid = upid
        self.tasks.append(task)
        if duration <= 0:
            self._advance()
        return upid

    def _advance(self) -> None:
        """Finish due tasks and expire held locks (called under the lock on every entry)."""
        now = time.monotonic()
        for vmid, (lock, until) in list(self._held_locks.items()):
            if until is not None and now >= until:
                del self._held_locks[vmid]
                vm = self.vms.get(vmid)
                if vm and vm.config.get("lock") == lock:
                    del vm.config["lock"]
        for task in self.tasks:
            if task.status == "running" and now >= task.deadline:
                self._finish(task)
        self._cond.notify_all()

    def _finish(self, task: Task) -> None:
        error = task.fail_with
        if error is None and task.action is not None:
            try:
                task.action()
            except PveError as exc:
                error = exc.message
        if error is not None and task.on_fail is not None:
            task.on_fail()
        for vm in self.vms.values():
            if vm.busy_upid == task.upid:
                vm.busy_upid = None
        task.status = "stopped"
        task.endtime = int(time.time())
        task.exitstatus = "OK" if error is None else " ".join(error.strip().splitlines())
        task.log.append("TASK OK" if error is None else f"TASK ERROR: {error.strip()}")

    def _file_lock(self, vm: Vm) -> None:
        """Wait like PVE's flock on /var/lock/qemu-server/lock-<vmid>.conf, then fail with its message."""
        end = time.monotonic() + self.file_lock_timeout
        while vm.busy_upid is not None:
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise _fail(f"can't lock file '/var/lock/qemu-server/lock-{vm.vmid}.conf' - got timeout")
            self._cond.wait(min(remaining, 0.02))
            self._advance()

    # ---------------------------------------------------------------- VM helpers
    def _vm(self, ctx: "_Ctx") -> Vm:
        vmid, node = ctx.args["vmid"], ctx.args["node"]
        vm = self.vms.get(vmid)
        if vm is None or vm.node != node:
            raise _fail(f"Configuration file 'nodes/{node}/qemu-server/{vmid}.conf' does not exist")
        return vm

    def _check_lock(self, vm: Vm, ctx: "_Ctx", allow: tuple[str, ...] = ()) -> None:
        skiplock = ctx.args.get("skiplock")
        if skiplock and ctx.user != "root@pam":
            raise _param_error("skiplock", "Only root may use this option.")
        lock = vm.config.get("lock")
        if lock and not skiplock and lock not in allow:
            raise _fail(f"VM {vm.vmid} is locked ({lock})")

    def _check_vmid_unused(self, vmid: int) -> None:
        if vmid in self.vms:
            raise _fail(f"VM {vmid} already exists on node '{self.vms[vmid].node}'")

    def digest(self, vm: Vm) -> str:
        text = "".join(f"{k}: {v}\n" for k, v in sorted(vm.config.items()))
        if vm.pending or vm.pending_delete:
            text += "[PENDING]\n" + "".join(f"{k}: {v}\n" for k, v in sorted(vm.pending.items()))
            text += f"delete: {','.join(sorted(vm.pending_delete))}\n" if vm.pending_delete else ""
        for name, snap in sorted(vm.snapshots.items()):
            text += f"[{name}]\n" + "".join(f"{k}: {v}\n" for k, v in sorted(snap.items()))
        return hashlib.sha1(text.encode()).hexdigest()

    def _typed_config(self, config: dict[str, str]) -> dict[str, Any]:
        """Config as PVE's JSON: integer/number/boolean options as numbers, the rest as strings."""
        out: dict[str, Any] = {}
        for key, value in config.items():
            sch = schema_mod.lookup_property(self._config_returns, key, schema_mod.QEMU_INDEX_LIMITS) or {}
            kind = sch.get("type")
            try:
                out[key] = int(value) if kind in ("integer", "boolean") else float(value) if kind == "number" else value
            except ValueError:
                out[key] = value
            if isinstance(out[key], float) and out[key].is_integer():
                out[key] = int(out[key])
        return out

    def _mac(self, vmid: int, key: str) -> str:
        # Deterministic, locally administered unicast (PVE's default prefix BC:24:11).
        digest = hashlib.sha1(f"{vmid}/{key}".encode()).digest()
        return "BC:24:11:" + ":".join(f"{b:02X}" for b in digest[:3])

    def _normalize_net(self, vmid: int, key: str, value: str) -> str:
        """Like print_net: 'model=MAC' first (MAC generated if missing), other keys sorted."""
        fmt = schema_mod.lookup_property(self._config_props, key, schema_mod.QEMU_INDEX_LIMITS)["format"]
        parsed = schema_mod.parse_property_string(fmt, value)
        model = parsed.pop("model", "virtio")
        mac = parsed.pop("macaddr", None) or self._mac(vmid, key)
        return ",".join([f"{model}={mac}"] + [f"{k}={v}" for k, v in sorted(parsed.items())])

    def _parse_opt(self, key: str, value: str) -> dict[str, str]:
        fmt = (schema_mod.lookup_property(self._config_props, key, schema_mod.QEMU_INDEX_LIMITS) or {}).get("format")
        if isinstance(fmt, str):
            fmt = schema_mod.NAMED_FORMATS.get(fmt)
        return schema_mod.parse_property_string(fmt, value) if isinstance(fmt, dict) else {}

    def _allocate_disk(self, vm_id: int, key: str, value: str, used: set[str]) -> str:
        """'STORAGE:SIZE' allocates a new volume like qemu-server's create_disks."""
        parsed = self._parse_opt(key, value)
        file = parsed.get("file", "")
        m = re.fullmatch(r"([a-z][a-z0-9\-_.]*[a-z0-9]):(\d+(?:\.\d+)?)", file, re.I)
        storage = file.split(":", 1)[0] if ":" in file else None
        if storage and storage not in self.storages:
            raise _fail(f"storage '{storage}' does not exist")
        if not m:
            return value
        n = 0
        while f"{storage}:vm-{vm_id}-disk-{n}" in used:
            n += 1
        volid = f"{storage}:vm-{vm_id}-disk-{n}"
        used.add(volid)
        parsed["file"] = volid
        parsed["size"] = f"{m.group(2)}G"
        parsed.pop("import-from", None)
        return schema_mod.print_property_string({"file": {"default_key": 1}}, parsed)

    def _volumes(self, vm: Vm) -> set[str]:
        vols = set()
        for cfg in [vm.config, vm.pending, *vm.snapshots.values()]:
            for key, value in cfg.items():
                if DRIVE_RE.match(key):
                    vols.add(self._parse_opt(key, value).get("file", ""))
        return vols

    # ---------------------------------------------------------------- config update (update_vm)
    def update_config(self, vm: Vm, ctx: "_Ctx") -> dict[str, str]:
        """Apply a config change like qemu-server's update_vm; returns hotplug errors per option."""
        changes, deletes, reverts = self.check_config_request(vm, ctx)
        # update_vm_api: deleting 'vmstate' (discarding a hibernation image) also drops the 'suspended' lock
        # (ignored by the lock check) and the runningmachine/runningcpu the resume would have enforced.
        if "vmstate" in deletes:
            if vm.config.get("lock") == "suspended":
                deletes.append("lock")
            deletes.extend(k for k in ("runningmachine", "runningcpu") if k in vm.config)
        if "vmstate" in deletes and "vmstate" in vm.config:
            if _bool(vm.config.get("protection")):
                raise _fail(f"can't remove vmstate '{vm.config['vmstate']}' - protection mode enabled")
            del vm.config["vmstate"]   # try_deallocate_drive(..., force): the state volume is freed at once
        for key in reverts:
            vm.pending.pop(key, None)
            vm.pending_delete.discard(key)
        used = self._volumes(vm)
        for key in list(changes):
            if DRIVE_RE.match(key) and not key.startswith("unused"):
                changes[key] = self._allocate_disk(vm.vmid, key, changes[key], used)
            elif key.startswith("net"):
                old = vm.pending.get(key, vm.config.get(key))
                mac = self._parse_opt(key, old).get("macaddr") if old else None
                parsed = self._parse_opt(key, changes[key])
                if mac and not parsed.get("macaddr"):
                    changes[key] = changes[key] + f",macaddr={mac}"
                changes[key] = self._normalize_net(vm.vmid, key, changes[key])
        for key in deletes:
            vm.pending.pop(key, None)
            if key in vm.config:
                vm.pending_delete.add(key)
        for key, value in changes.items():
            vm.pending_delete.discard(key)
            if vm.config.get(key) == value:
                vm.pending.pop(key, None)
            else:
                vm.pending[key] = value
        if vm.status != "running":
            self._apply_pending(vm)
            return {}
        return self._hotplug_pending(vm)

    def check_config_request(self, vm: Vm, ctx: "_Ctx") -> tuple[dict[str, str], list[str], list[str]]:
        """The checks of qemu-server's update_vm_api, in its order, made before its worker forks (so a POST gets
        them as a synchronous error, not a failed task) and again inside it: 'no options specified', the
        delete/revert parameters, the digest, the VM lock (a 'suspended' lock does not count when 'vmstate' is
        deleted), then value checks such as the balloon limit. Returns (changes, deletes, reverts)."""
        args = ctx.args
        changes = {k: v for k, v in ctx.raw.items()
                   if k not in ("node", "vmid", "delete", "digest", "skiplock", "revert", "force",
                                "background_delay", "import-working-storage", "skip_cloud_init")}
        for k in changes:
            changes[k] = _to_config_string(args[k]) if not isinstance(args[k], str) else args[k]
        deletes = schema_mod.split_list(args.get("delete", ""))
        reverts = schema_mod.split_list(args.get("revert", ""))
        if args.get("skiplock") and ctx.user != "root@pam":
            raise _param_error("skiplock", "Only root may use this option.")
        if not changes and not deletes and not reverts:
            raise _fail("no options specified")
        self._check_delete_params(changes, deletes)
        if args.get("digest") and args["digest"] != self.digest(vm):
            raise _fail("detected modified configuration - file changed by other user? Try again.")
        suspended_ok = "vmstate" in deletes and vm.config.get("lock") == "suspended"
        self._check_lock(vm, ctx, allow=("suspended",) if suspended_ok else ())
        self._check_semantics(vm, changes, deletes)
        return changes, deletes, reverts

    def _check_delete_params(self, changes: dict[str, str], deletes: list[str]) -> None:
        for key in deletes:
            if key in changes:
                raise _param_error("delete", f"you can't use '-{key}' and -delete {key}' at the same time")
            if not self.option_exists(key):
                raise _param_error("delete", f"unknown option '{key}'")

    def option_exists(self, key: str) -> bool:
        """qemu-server option_exists: any $confdesc key, including those the set API does not take."""
        return key in CONFDESC_ONLY or schema_mod.lookup_property(
            self._config_props, key, schema_mod.QEMU_INDEX_LIMITS) is not None

    def _check_semantics(self, vm: Vm, changes: dict[str, str], deletes: list[str]) -> None:
        view = {**vm.config, **vm.pending, **changes}
        for key in deletes:
            view.pop(key, None)
        if "memory" in changes or "balloon" in changes:
            balloon = int(view.get("balloon", 0) or 0)
            if balloon and balloon > current_memory(view.get("memory")):
                raise _fail("balloon value too large (must be smaller than assigned memory)")
        for key, value in changes.items():
            if key.startswith("hostpci"):
                parsed = self._parse_opt(key, value)
                if ("host" in parsed) == ("mapping" in parsed):
                    raise _param_error(key, "either 'host' or 'mapping' must be set" if "host" not in parsed
                                       else "'host' and 'mapping' cannot be set at the same time")

    def _apply_pending(self, vm: Vm) -> None:
        """vmconfig_apply_pending: deletes (disks become unusedN) then new values."""
        for key in sorted(vm.pending_delete):
            old = vm.config.pop(key, None)
            if old and DRIVE_RE.match(key) and not key.startswith("unused"):
                vol = self._parse_opt(key, old).get("file", "")
                if vol and vol not in ("none", "cdrom") and "media=cdrom" not in old:
                    n = 0
                    while f"unused{n}" in vm.config:
                        n += 1
                    vm.config[f"unused{n}"] = vol
        vm.config.update(vm.pending)
        vm.pending.clear()
        vm.pending_delete.clear()

    def _hotplug_pending(self, vm: Vm) -> dict[str, str]:
        """vmconfig_hotplug_pending: apply what a running VM can take live, keep the rest pending."""
        feats = schema_mod.parse_hotplug(vm.config.get("hotplug"))
        errors: dict[str, str] = {}
        for key in sorted(vm.pending_delete):
            verdict = self._hotplug_delete_verdict(vm, key, feats)
            if verdict == "live":
                vm.config.pop(key, None)
                vm.pending_delete.discard(key)
            elif verdict != "skip":
                errors[key] = f"hotplug problem - {verdict}"
        for key in sorted(vm.pending):
            verdict = self._hotplug_verdict(vm, key, vm.pending[key], feats)
            if verdict == "live":   # (memory hot-plug may have rounded the pending value to whole DIMMs)
                vm.config[key] = vm.pending.pop(key)
            elif verdict != "skip":
                errors[key] = f"hotplug problem - {verdict}"
        return errors

    def _device_add(self, vm: Vm) -> str:
        if vm.refuse_hotplug:
            return f"VM {vm.vmid} qmp command 'device_add' failed - {vm.refuse_hotplug}"
        return "live"

    def _hotplug_verdict(self, vm: Vm, key: str, value: str, feats: set[str]) -> str:
        """'live', 'skip' (stays pending silently) or an error message (stays pending)."""
        cfg = vm.config
        if key in FAST_PLUG or key in ("cpulimit", "cpuunits"):
            return "live"
        if key == "hotplug":   # switching cpu/memory hot-plug needs a restart
            return "skip" if re.search("memory|cpu", value + "," + cfg.get("hotplug", "")) else "live"
        if key == "vcpus":
            if "cpu" not in feats:
                return "skip"
            if int(value) > int(cfg.get("cores", 1)) * int(cfg.get("sockets", 1)):
                return "you can't add more vcpus than maxcpus"
            return "live"
        if key == "balloon":
            # enabling/disabling the balloon device is not hotpluggable
            if int(cfg.get("balloon", 1) or 0) == 0 or int(value) == 0:
                return "skip"
            return "live"
        if key == "memory":
            return self._memory_verdict(vm, value, feats)
        if key.startswith("net") and key[3:].isdigit():
            return self._net_verdict(vm, key, value, feats)
        if DRIVE_RE.match(key) and not key.startswith(("unused", "efidisk", "tpmstate")):
            return self._disk_verdict(vm, key, value, feats)
        return "skip"  # cores, sockets, hostpci, numa, cpu, machine, ... apply on next start

    def _memory_verdict(self, vm: Vm, value: str, feats: set[str]) -> str:
        """Memory.pm qemu_memory_hotplug: DIMMs of 512 MiB (x2 every 32) above the static 1024 MiB."""
        if "memory" not in feats:
            return "skip"
        old, new = current_memory(vm.config.get("memory")), current_memory(value)
        if new == old:
            return "live"
        static = STATIC_MEMORY_MIB
        if vm.config.get("hugepages") == "1024":
            static *= int(vm.config.get("sockets", 1))
        if new < static:
            return f"memory can't be lower than {static} MB"
        if new > MAX_HOTPLUG_MEMORY_MIB:
            return f"you cannot add more memory than max mem {MAX_HOTPLUG_MEMORY_MIB} MB!"
        dimm = 1024 if vm.config.get("hugepages") == "1024" else 512
        bounds = [static]
        while bounds[-1] < max(old, new):
            bounds.append(bounds[-1] + dimm * 2 ** ((len(bounds) - 1) // 32))
        if new > old:
            verdict = self._device_add(vm)
            if verdict != "live":
                return verdict
            reached = next(b for b in bounds if b >= new)          # plugged until >= the target
        else:
            reached = max([b for b in bounds if b <= new] or [static])  # unplugged until <= the target
        vm.pending["memory"] = str(reached)
        return "live"

    def _net_verdict(self, vm: Vm, key: str, value: str, feats: set[str]) -> str:
        """vmconfig_update_net: in-place changes need no hot-plug feature, replugging needs 'network'."""
        old = vm.config.get(key)
        if old is not None:
            a, b = self._parse_opt(key, old), self._parse_opt(key, value)
            changed = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
            if not changed & NET_REPLUG_KEYS and a.get("bridge") and b.get("bridge"):
                return "live"   # bridge/tag/trunks/firewall (tap replug), rate, link_down, other keys
        if "network" not in feats:
            return "skip"
        return self._device_add(vm)

    def _disk_verdict(self, vm: Vm, key: str, value: str, feats: set[str]) -> str:
        """vmconfig_update_disk."""
        old = vm.config.get(key)
        if old is not None:
            a, b = self._parse_opt(key, old), self._parse_opt(key, value)
            if a.get("media", "disk") != b.get("media", "disk"):
                return "unable to change media type"
            if a.get("media") == "cdrom":
                return "live"   # change_medium
            if a.get("file") == b.get("file"):
                changed = {k for k in set(a) | set(b) if a.get(k) != b.get(k)}
                return "skip" if changed & DISK_COLD_KEYS else "live"   # throttling / config-only keys
        if "disk" not in feats or key.startswith(("ide", "sata")):
            return "skip"
        return self._device_add(vm)

    def _hotplug_delete_verdict(self, vm: Vm, key: str, feats: set[str]) -> str:
        if key in FAST_PLUG or key in ("cpulimit", "cpuunits"):
            return "live"
        if key == "hotplug":
            return "skip" if re.search("cpu|memory", vm.config.get("hotplug", "")) else "live"
        if key == "vcpus":
            return "live" if "cpu" in feats else "skip"
        if key == "balloon":   # reset to the memory size, unless the balloon device is disabled
            return "skip" if vm.config.get("balloon") == "0" else "live"
        if key == "memory":   # qemu_memory_hotplug to the 512 MiB default: below the static memory
            return "skip" if "memory" not in feats else f"memory can't be lower than {STATIC_MEMORY_MIB} MB"
        if key.startswith("net") and key[3:].isdigit():
            return "live" if "network" in feats else "skip"
        if DRIVE_RE.match(key) and key.startswith(("scsi", "virtio")):
            return "live" if "disk" in feats else "skip"
        if key.startswith("unused"):
            return "live"
        return "skip"

    # ---------------------------------------------------------------- status / metrics
    def _maxmem(self, vm: Vm) -> int:
        return current_memory(vm.config.get("memory")) * MIB

    def _cpus(self, vm: Vm) -> int:
        cfg = vm.config
        return int(cfg.get("vcpus") or int(cfg.get("cores", 1)) * int(cfg.get("sockets", 1)))

    def _usage(self, vm: Vm) -> tuple[float, int]:
        """Synthetic, deterministic per-VM CPU fraction and used memory while running."""
        if vm.status != "running":
            return 0.0, 0
        seed = (vm.vmid * 2654435761) % 1000 / 1000.0
        balloon = int(vm.config.get("balloon", 0) or 0)
        target = balloon * MIB if balloon else self._maxmem(vm)
        return round(0.05 + 0.3 * seed, 4), int(target * (0.4 + 0.3 * seed))

    def vm_status(self, vm: Vm) -> dict:
        cpu, mem = self._usage(vm)
        cfg = vm.config
        out = {
            "vmid": vm.vmid, "name": cfg.get("name", f"VM {vm.vmid}"), "status": vm.status,
            "qmpstatus": vm.qmpstatus if vm.status == "running" else "stopped",
            "cpus": self._cpus(vm), "maxmem": self._maxmem(vm), "mem": mem, "cpu": cpu,
            "uptime": int(time.time() - vm.started) if vm.status == "running" else 0,
            "maxdisk": 32 * GIB, "disk": 0, "diskread": 0, "diskwrite": 0, "netin": 0, "netout": 0,
            "ha": {"managed": 0},
            "agent": 1 if _bool(self._parse_opt("agent", cfg["agent"]).get("enabled")
                                if "agent" in cfg else None) else 0,
        }
        if vm.status == "running":
            out["pid"] = 10000 + vm.vmid
            out["running-machine"] = "pc-i440fx-9.2+pve1"
            out["running-qemu"] = "9.2.0"
            balloon = int(cfg.get("balloon", 1) or 0)
            if balloon:
                out["balloon"] = int(cfg["balloon"]) * MIB if "balloon" in cfg else self._maxmem(vm)
                out["ballooninfo"] = {"actual": out["balloon"], "max_mem": self._maxmem(vm)}
        for key in ("lock", "tags"):
            if key in cfg:
                out[key] = cfg[key]
        if _bool(cfg.get("template")):
            out["template"] = 1
        return out


# --------------------------------------------------------------------------------------------------
# Endpoint handlers
# --------------------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    pve: PveStandIn
    user: str
    args: dict[str, Any]
    raw: dict[str, Any]


_ROUTES: dict[tuple[str, str], Callable[[PveStandIn, _Ctx], Any]] = {}
Q = "/nodes/{node}/qemu/{vmid}"


def route(method: str, template: str):
    def deco(fn):
        _ROUTES[(method, template)] = fn
        return fn
    return deco


@route("GET", "/version")
def _version(pve, ctx):
    return {"version": "9.1.3", "release": "9.1", "repoid": "standin0"}


@route("GET", "/nodes")
def _nodes(pve, ctx):
    out = []
    for node in pve.nodes.values():
        st = _node_usage(pve, node.name)
        out.append({"node": node.name, "id": f"node/{node.name}", "type": "node", "status": "online",
                    "cpu": st["cpu"], "maxcpu": node.cpus, "mem": st["mem"], "maxmem": node.memory,
                    "uptime": 86400, "level": "", "ssl_fingerprint": "00:" * 31 + "00"})
    return out


def _node_usage(pve: PveStandIn, name: str) -> dict:
    running = [vm for vm in pve.vms.values() if vm.node == name and vm.status == "running"]
    mem = 2 * GIB + sum(pve._usage(vm)[1] for vm in running)
    cpu = min(1.0, 0.02 + sum(pve._usage(vm)[0] * pve._cpus(vm) for vm in running) / pve.nodes[name].cpus)
    return {"cpu": round(cpu, 4), "mem": mem}


@route("GET", "/nodes/{node}/status")
def _node_status(pve, ctx):
    node = pve.nodes[ctx.args["node"]]
    st = _node_usage(pve, node.name)
    return {"cpu": st["cpu"], "uptime": 86400, "loadavg": ["0.10", "0.20", "0.30"],
            "cpuinfo": {"cpus": node.cpus, "cores": node.cpus // 2, "sockets": 1, "model": "Stand-in CPU",
                        "mhz": "2400.000", "hvm": "1", "flags": "vmx"},
            "memory": {"total": node.memory, "used": st["mem"], "free": node.memory - st["mem"],
                       "available": node.memory - st["mem"]},
            "swap": {"total": 0, "used": 0, "free": 0},
            "rootfs": {"total": 100 * GIB, "used": 10 * GIB, "free": 90 * GIB, "avail": 90 * GIB},
            "kversion": "Linux 6.14.8-2-pve", "pveversion": "pve-manager/9.1.3/standin0",
            "boot-info": {"mode": "efi", "secureboot": 0}}


def _vm_resource(pve: PveStandIn, vm: Vm) -> dict:
    st = pve.vm_status(vm)
    out = {"id": f"qemu/{vm.vmid}", "type": "qemu", "node": vm.node, "vmid": vm.vmid, "name": st["name"],
           "status": vm.status, "maxmem": st["maxmem"], "mem": st["mem"], "maxcpu": st["cpus"],
           "cpu": st["cpu"], "uptime": st["uptime"], "maxdisk": st["maxdisk"], "disk": 0,
           "netin": 0, "netout": 0, "diskread": 0, "diskwrite": 0,
           "template": 1 if _bool(vm.config.get("template")) else 0}
    for key in ("lock", "tags"):
        if key in vm.config:
            out[key] = vm.config[key]
    return out


@route("GET", "/cluster/resources")
def _resources(pve, ctx):
    kind = ctx.args.get("type")
    out = []
    if kind in (None, "vm"):
        out += [_vm_resource(pve, vm) for vm in sorted(pve.vms.values(), key=lambda v: v.vmid)]
    if kind in (None, "node"):
        for n in _nodes(pve, ctx):
            out.append({**n, "disk": 10 * GIB, "maxdisk": 100 * GIB})
    if kind in (None, "storage"):
        for node in pve.nodes:
            for st in pve.storages:
                out.append({"id": f"storage/{node}/{st}", "type": "storage", "node": node, "storage": st,
                            "status": "available", "disk": 10 * GIB, "maxdisk": 500 * GIB, "shared": 0,
                            "plugintype": "lvmthin" if st.endswith("lvm") else "dir",
                            "content": "images,rootdir" if st.endswith("lvm") else "iso,vztmpl,backup"})
    return out


@route("GET", "/cluster/nextid")
def _nextid(pve, ctx):
    vmid = ctx.args.get("vmid")
    if vmid is not None:
        if vmid in pve.vms:
            raise _param_error("vmid", f"VM {vmid} already exists")
        return vmid
    vmid = 100
    while vmid in pve.vms:
        vmid += 1
    return vmid


@route("GET", "/nodes/{node}/qemu")
def _qemu_list(pve, ctx):
    return [{k: v for k, v in _vm_resource(pve, vm).items() if k not in ("id", "type", "node")}
            | {"cpus": pve._cpus(vm)}
            for vm in sorted(pve.vms.values(), key=lambda v: v.vmid) if vm.node == ctx.args["node"]]


@route("POST", "/nodes/{node}/qemu")
def _qemu_create(pve, ctx):
    args = ctx.args
    vmid = args["vmid"]
    pve._check_vmid_unused(vmid)
    for key in ("archive", "live-restore", "unique", "storage", "bwlimit"):
        if key in args:  # restore from backup is not modelled
            raise _fail(f"stand-in: create option '{key}' is not implemented", 501)
    cfg_params = {k: v for k, v in ctx.raw.items() if k not in ("node", "vmid", "start", "pool", "force")}
    vm = Vm(vmid, args["node"], {"lock": "create"})
    pve.vms[vmid] = vm
    try:
        sub = _Ctx(pve, ctx.user, {**args, "skiplock": None}, cfg_params)
        vm.config.pop("lock")
        pve.update_config(vm, sub)
    except Exception:
        del pve.vms[vmid]
        raise
    vm.config.setdefault("smbios1", f"uuid=00000000-0000-4000-8000-{vmid:012d}")
    vm.config.setdefault("vmgenid", f"00000000-0000-4000-8000-{vmid:012d}")
    vm.config["lock"] = "create"

    def done():
        vm.config.pop("lock", None)
        if args.get("start"):
            _do_start(pve, vm)

    def failed():
        pve.vms.pop(vmid, None)

    return pve._new_task(args["node"], "qmcreate", vmid, ctx.user, action=done, on_fail=failed)


@route("GET", Q + "/config")
def _config_get(pve, ctx):
    vm = pve._vm(ctx)
    if ctx.args.get("snapshot"):
        snap = vm.snapshots.get(ctx.args["snapshot"])
        if snap is None:
            raise _fail(f"snapshot '{ctx.args['snapshot']}' does not exist")
        cfg = {k: v for k, v in snap.items() if k not in ("snaptime", "snapstate")}
    elif ctx.args.get("current"):
        cfg = dict(vm.config)
    else:  # default: pending values applied (schema: 'current' = "instead of pending values")
        cfg = {k: v for k, v in {**vm.config, **vm.pending}.items() if k not in vm.pending_delete}
    return pve._typed_config(cfg) | {"digest": pve.digest(vm)}


@route("GET", Q + "/pending")
def _pending_get(pve, ctx):
    vm = pve._vm(ctx)
    out = []
    for key in sorted(set(vm.config) | set(vm.pending) | vm.pending_delete):
        item: dict[str, Any] = {"key": key}
        if key in vm.config:
            item["value"] = pve._typed_config({key: vm.config[key]})[key]
        if key in vm.pending:
            item["pending"] = pve._typed_config({key: vm.pending[key]})[key]
        if key in vm.pending_delete:
            item["delete"] = 1
        out.append(item)
    return out


@route("PUT", Q + "/config")
def _config_put(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    errors = pve.update_config(vm, ctx)
    if errors:
        raise ParameterError({k: v + "\n" for k, v in errors.items()})
    return None


@route("POST", Q + "/config")
def _config_post(pve, ctx):
    vm = pve._vm(ctx)
    # update_vm_api's early checks (options, lock, values) answer before the worker forks, as in PVE; what the
    # worker finds (hot-plug problems) fails the task.
    pve.check_config_request(vm, ctx)
    pve._file_lock(vm)

    def work():
        errors = pve.update_config(vm, ctx)
        if errors:
            raise _fail("\n".join(f"{k}: {v}" for k, v in sorted(errors.items())))

    return pve._new_task(vm.node, "qmconfig", vm.vmid, ctx.user, action=work, file_lock=vm.vmid)


@route("GET", Q + "/status/current")
def _status_current(pve, ctx):
    return pve.vm_status(pve._vm(ctx))


@route("GET", Q)
def _vm_dir(pve, ctx):
    pve._vm(ctx)
    return [{"subdir": s} for s in ("config", "pending", "status", "snapshot", "rrddata", "clone", "migrate")]


@route("GET", Q + "/status")
def _status_dir(pve, ctx):
    pve._vm(ctx)
    return [{"subdir": s} for s in ("current", "start", "stop", "shutdown", "reboot", "suspend", "resume")]


def _start_problem(cfg: dict[str, str]) -> str | None:
    """Memory.pm config(): what makes the QEMU command line fail for memory hot-plug."""
    if "memory" not in schema_mod.parse_hotplug(cfg.get("hotplug")):
        return None
    if not _bool(cfg.get("numa")):
        return "NUMA needs to be enabled for memory hotplug"
    if any(re.fullmatch(r"numa\d+", k) for k in cfg):
        return "cannot enable memory hotplugging with custom NUMA topology"
    if current_memory(cfg.get("memory")) < STATIC_MEMORY_MIB:
        return f"minimum memory must be {STATIC_MEMORY_MIB}MB"
    return None


def _do_start(pve: PveStandIn, vm: Vm) -> None:
    node = pve.nodes[vm.node]
    used = sum(pve._maxmem(v) for v in pve.vms.values() if v.node == vm.node and v.status == "running")
    pve._apply_pending(vm)
    maxcpus = int(vm.config.get("cores", 1)) * int(vm.config.get("sockets", 1))
    if maxcpus > node.cpus:   # config_to_command's check against the host's CPU count
        raise _fail(f"MAX {node.cpus} vcpus allowed per VM on this node")
    problem = _start_problem(vm.config)
    if problem:
        raise _fail(problem)
    if used + pve._maxmem(vm) > node.memory:
        raise _fail("start failed: QEMU exited with code 1")
    if vm.config.get("lock") == "suspended" or "vmstate" in vm.config:
        for key in ("vmstate", "runningmachine", "runningcpu"):
            vm.config.pop(key, None)
        vm.config.pop("lock", None)
    vm.status, vm.qmpstatus, vm.started = "running", "running", time.time()


def _power_task(pve: PveStandIn, ctx: _Ctx, task_type: str, action: Callable[[Vm], None],
                vm: Vm) -> str:
    return pve._new_task(vm.node, task_type, vm.vmid, ctx.user, action=lambda: action(vm), file_lock=vm.vmid)


def _require_running(vm: Vm) -> None:
    if vm.status != "running":
        raise _fail(f"VM {vm.vmid} not running")


@route("POST", Q + "/status/start")
def _start(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    pve._check_lock(vm, ctx, allow=("suspended",))
    if _bool(vm.config.get("template")):
        raise _fail("you can't start a vm if it's a template")
    if vm.status == "running":
        raise _fail(f"VM {vm.vmid} already running")
    return _power_task(pve, ctx, "qmstart", lambda v: _do_start(pve, v), vm)


def _do_stop(vm: Vm) -> None:
    vm.status, vm.qmpstatus, vm.started = "stopped", "stopped", 0.0


@route("POST", Q + "/status/stop")
def _stop(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    pve._check_lock(vm, ctx)
    _require_running(vm)
    return _power_task(pve, ctx, "qmstop", _do_stop, vm)


@route("POST", Q + "/status/shutdown")
def _shutdown(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    pve._check_lock(vm, ctx)
    _require_running(vm)
    if vm.qmpstatus == "paused" and not ctx.args.get("forceStop"):
        raise _fail("VM is paused - cannot shutdown")
    return _power_task(pve, ctx, "qmshutdown", _do_stop, vm)


@route("POST", Q + "/status/reboot")
def _reboot(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    pve._check_lock(vm, ctx)
    _require_running(vm)

    def reboot(v: Vm) -> None:
        _do_stop(v)
        _do_start(pve, v)   # a reboot applies pending changes like stop+start
    return _power_task(pve, ctx, "qmreboot", reboot, vm)


@route("POST", Q + "/status/suspend")
def _suspend(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    pve._check_lock(vm, ctx)
    _require_running(vm)
    if not ctx.args.get("todisk"):
        return _power_task(pve, ctx, "qmsuspend", lambda v: setattr(v, "qmpstatus", "paused"), vm)
    storage = ctx.args.get("statestorage") or "local-lvm"
    if storage not in pve.storages:
        raise _fail(f"storage '{storage}' does not exist")
    vm.config["lock"] = "suspending"

    def hibernate(v: Vm) -> None:
        stamp = time.strftime("%Y-%m-%d-%H-%M-%S")
        v.config["vmstate"] = f"{storage}:vm-{v.vmid}-state-suspend-{stamp}"
        v.config["runningmachine"] = "pc-i440fx-9.2+pve1"
        v.config["lock"] = "suspended"
        _do_stop(v)

    def failed() -> None:
        if vm.config.get("lock") == "suspending":
            vm.config.pop("lock")

    return pve._new_task(vm.node, "qmsuspend", vm.vmid, ctx.user, action=lambda: hibernate(vm),
                         on_fail=failed, file_lock=vm.vmid)


@route("POST", Q + "/status/resume")
def _resume(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    if vm.config.get("lock") == "suspended":   # resume of a hibernated VM starts it from its vmstate
        return _power_task(pve, ctx, "qmresume", lambda v: _do_start(pve, v), vm)
    pve._check_lock(vm, ctx, allow=("backup",))
    _require_running(vm)
    return _power_task(pve, ctx, "qmresume", lambda v: setattr(v, "qmpstatus", "running"), vm)


# Console proxies: PVE's vncproxy/spiceproxy/termproxy start a worker task that lives as long as the client's
# connection (qemu-server API2/Qemu.pm). The stand-in keeps the task running until close_console().
@route("POST", Q + "/vncproxy")
def _vncproxy(pve, ctx):
    vm = pve._vm(ctx)
    upid = pve._console_task(vm, "vncproxy", ctx.user)
    port = 5900 + vm.vmid % 100
    return {"cert": "-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n", "port": port,
            "ticket": f"PVEVNC:{secrets.token_urlsafe(16)}", "upid": upid, "user": ctx.user}


@route("POST", Q + "/termproxy")
def _termproxy(pve, ctx):
    vm = pve._vm(ctx)
    upid = pve._console_task(vm, "termproxy", ctx.user)
    return {"port": 5900 + vm.vmid % 100, "ticket": f"PVEVNC:{secrets.token_urlsafe(16)}", "upid": upid,
            "user": ctx.user}


@route("GET", Q + "/agent/get-users")
def _agent_get_users(pve, ctx):
    # qemu-server Agent.pm: assert_agent_available (configured, VM running), then the QMP call to the agent.
    vm = pve._vm(ctx)
    conf = vm.config
    if not ("agent" in conf and _bool(pve._parse_opt("agent", conf["agent"]).get("enabled"))):
        raise _fail("No QEMU guest agent configured")
    _require_running(vm)
    if vm.agent_users is None or vm.qmpstatus != "running":
        raise _fail("QEMU guest agent is not running")
    return {"result": [dict(u) for u in vm.agent_users]}


@route("POST", Q + "/template")
def _template(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    pve._check_lock(vm, ctx)
    if _bool(vm.config.get("template")):
        raise _fail("you can't convert a template to a template")
    if vm.status == "running":
        raise _fail("you can't convert a running VM to a template")

    def convert(v: Vm) -> None:
        v.config["template"] = "1"
        for key, value in list(v.config.items()):
            if DRIVE_RE.match(key) and not key.startswith("unused"):
                v.config[key] = re.sub(r":vm-(\d+)-disk-", r":base-\1-disk-", value)
    return _power_task(pve, ctx, "qmtemplate", convert, vm)


def _check_linked_clone(pve: PveStandIn, conf: dict[str, str], snapname: str | None) -> None:
    """clone_vm: every disk (not CD-ROMs) needs its storage's 'clone' feature (volume_has_feature): a base volume
    (a template's) on any storage, or a snapshot on lvmthin. A VM without disks has nothing to check."""
    for key in sorted(conf):
        if not DRIVE_RE.match(key) or key.startswith("unused") or "media=cdrom" in conf[key]:
            continue
        volid = pve._parse_opt(key, conf[key]).get("file", "")
        storage, volname = volid.split(":", 1) if ":" in volid else ("", volid)
        is_base = volname.rsplit("/", 1)[-1].startswith("base-")
        lvmthin = storage.endswith("lvm")   # the stand-in's storage types, as /nodes/{node}/storage reports them
        if is_base and not snapname or (snapname and lvmthin):
            continue
        what = f"a snapshot of '{volid}'" if snapname else f"'{volid}'"
        raise _fail(f"Linked clone feature is not supported for {what} ({key})")


@route("POST", Q + "/clone")
def _clone(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    args = ctx.args
    newid, target = args["newid"], args.get("target") or vm.node
    pve._check_vmid_unused(newid)
    if target not in pve.nodes:
        raise _fail(f"no such cluster node '{target}'")
    is_template = _bool(vm.config.get("template"))
    full = args["full"] if "full" in args else not is_template
    if vm.config.get("lock") and not (is_template and vm.config["lock"] == "clone"):
        pve._check_lock(vm, ctx)
    snapname = args.get("snapname")
    if snapname and snapname not in vm.snapshots:
        raise _fail(f"snapshot '{snapname}' does not exist")
    if not full:
        if args.get("storage"):
            raise _fail("parameter 'storage' not allowed for linked clones")
        _check_linked_clone(pve, vm.snapshots[snapname] if snapname else vm.config, snapname)
    if target != vm.node and vm.status == "running" and full is False:
        raise _fail("clone to another node of a running VM is not supported")
    source = vm.snapshots[args["snapname"]] if args.get("snapname") else vm.config
    newconf = {k: v for k, v in source.items()
               if k not in ("template", "lock", "vmstate", "parent", "snaptime", "snapstate", "runningmachine",
                            "runningcpu") and not k.startswith("unused")}
    newconf["name"] = args.get("name") or f"Copy-of-VM-{vm.config.get('name', vm.vmid)}"
    if args.get("description"):
        newconf["description"] = args["description"]
    newconf["smbios1"] = f"uuid=00000000-0000-4000-8000-{newid:012d}"
    newconf["vmgenid"] = f"00000000-0000-4000-8000-{newid:012d}"
    disk_no = 0
    for key in sorted(newconf):
        if DRIVE_RE.match(key) and "media=cdrom" not in newconf[key]:
            parsed = pve._parse_opt(key, newconf[key])
            storage = args.get("storage") or parsed.get("file", "local-lvm:").split(":", 1)[0]
            base = parsed.get("file", "").split(":", 1)[-1]
            parsed["file"] = (f"{storage}:{base}/vm-{newid}-disk-{disk_no}" if not full
                              else f"{storage}:vm-{newid}-disk-{disk_no}")
            disk_no += 1
            newconf[key] = schema_mod.print_property_string({"file": {"default_key": 1}}, parsed)
        elif key.startswith("net") and key[3:].isdigit():
            parsed = pve._parse_opt(key, newconf[key])
            parsed.pop("macaddr", None)
            newconf[key] = pve._normalize_net(newid, key, ",".join(
                [parsed.pop("model", "virtio")] + [f"{k}={v}" for k, v in parsed.items()]))
    newconf["lock"] = "clone"
    pve.vms[newid] = Vm(newid, target, newconf)

    def done():
        pve.vms[newid].config.pop("lock", None)

    def failed():
        pve.vms.pop(newid, None)
    return pve._new_task(vm.node, "qmclone", vm.vmid, ctx.user, action=done, on_fail=failed, file_lock=vm.vmid)


@route("DELETE", Q)
def _destroy(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    pve._check_lock(vm, ctx, allow=("suspended",))   # destroy_vm skips the lock check for 'suspended'
    if _bool(vm.config.get("protection")):
        raise _fail(f"can't remove VM {vm.vmid} - protection mode enabled")
    if vm.status == "running":
        raise _fail(f"VM {vm.vmid} is running - destroy failed")
    vm.config["lock"] = "destroyed"

    def failed():
        vm.config.pop("lock", None)

    def destroyed():
        pve.vms.pop(vm.vmid, None)
        pve.firewall.remove_vm(vm.vmid)   # destroy_vm -> remove_vmfw_conf
    return pve._new_task(vm.node, "qmdestroy", vm.vmid, ctx.user, action=destroyed, on_fail=failed,
                         file_lock=vm.vmid)


@route("GET", Q + "/migrate")
def _migrate_precondition(pve, ctx):
    vm = pve._vm(ctx)
    local = [k for k in vm.config if k.startswith("hostpci")]
    return {"running": 1 if vm.status == "running" else 0, "allowed_nodes": [n for n in pve.nodes if n != vm.node],
            "not_allowed_nodes": {}, "local_disks": [], "local_resources": local, "mapped-resources": [],
            "has-dbus-vmstate": 0}


@route("POST", Q + "/migrate")
def _migrate(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    target = ctx.args["target"]
    if target == vm.node:
        raise _fail("target is local node.")
    if target not in pve.nodes:
        raise _fail(f"no such cluster node '{target}'")
    pve._check_lock(vm, ctx)
    if vm.status == "running":
        if not ctx.args.get("online"):
            raise _fail("can't migrate running VM without --online")
        local = [k for k in vm.config if k.startswith(("hostpci", "usb")) and "mapping=" not in vm.config[k]]
        if local and not ctx.args.get("force"):
            raise _fail(f"can't migrate VM which uses local devices: {', '.join(sorted(local))}")
    vm.config["lock"] = "migrate"

    def moved():
        vm.config.pop("lock", None)
        vm.node = target

    def failed():
        vm.config.pop("lock", None)
    return pve._new_task(vm.node, "qmigrate", vm.vmid, ctx.user, action=moved, on_fail=failed)


# -------- snapshots


@route("GET", Q + "/snapshot")
def _snap_list(pve, ctx):
    vm = pve._vm(ctx)
    out = []
    for name, snap in vm.snapshots.items():
        item = {"name": name, "description": snap.get("description", ""), "snaptime": int(snap["snaptime"])}
        if "parent" in snap:
            item["parent"] = snap["parent"]
        if "vmstate" in snap:
            item["vmstate"] = 1
        out.append(item)
    current = {"name": "current", "description": "You are here!", "digest": pve.digest(vm),
               "running": 1 if vm.status == "running" else 0}
    if vm.parent:
        current["parent"] = vm.parent
    return out + [current]


@route("POST", Q + "/snapshot")
def _snap_create(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    name = ctx.args["snapname"]
    if name in ("current", "vzdump"):
        raise _param_error("snapname", f"invalid snapshot name '{name}'")
    pve._check_lock(vm, ctx)
    if name in vm.snapshots:
        raise _fail(f"snapshot name '{name}' already used")
    if any(k.startswith("hostpci") for k in vm.config) and ctx.args.get("vmstate") and vm.status == "running":
        raise _fail("cannot create a snapshot with RAM state of a VM with passed-through PCI devices")
    vm.config["lock"] = "snapshot"
    want_state = bool(ctx.args.get("vmstate")) and vm.status == "running"

    def done():
        vm.config.pop("lock", None)
        snap = {k: v for k, v in vm.config.items() if k not in ("lock",)}
        snap["snaptime"] = str(int(time.time()))
        if ctx.args.get("description"):
            snap["description"] = ctx.args["description"]
        if vm.parent:
            snap["parent"] = vm.parent
        if want_state:
            snap["vmstate"] = f"local-lvm:vm-{vm.vmid}-state-{name}"
            snap["runningmachine"] = "pc-i440fx-9.2+pve1"
        vm.snapshots[name] = snap
        vm.parent = name

    def failed():
        vm.config.pop("lock", None)
    return pve._new_task(vm.node, "qmsnapshot", vm.vmid, ctx.user, action=done, on_fail=failed)


def _snapshot(vm: Vm, name: str) -> dict:
    snap = vm.snapshots.get(name)
    if snap is None:
        raise _fail(f"snapshot '{name}' does not exist")
    return snap


@route("GET", Q + "/snapshot/{snapname}")
def _snap_dir(pve, ctx):
    _snapshot(pve._vm(ctx), ctx.args["snapname"])
    return [{"rel": "config"}, {"rel": "rollback"}]


@route("GET", Q + "/snapshot/{snapname}/config")
def _snap_config(pve, ctx):
    snap = _snapshot(pve._vm(ctx), ctx.args["snapname"])
    return pve._typed_config({k: v for k, v in snap.items() if k != "snapstate"})


@route("PUT", Q + "/snapshot/{snapname}/config")
def _snap_config_put(pve, ctx):
    vm = pve._vm(ctx)
    snap = _snapshot(vm, ctx.args["snapname"])
    if "description" in ctx.args:
        snap["description"] = ctx.args["description"]
    return None


@route("DELETE", Q + "/snapshot/{snapname}")
def _snap_delete(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    name = ctx.args["snapname"]
    _snapshot(vm, name)
    if not ctx.args.get("force"):
        pve._check_lock(vm, ctx)
    vm.config["lock"] = "snapshot-delete"

    def done():
        vm.config.pop("lock", None)
        snap = vm.snapshots.pop(name)
        for other in vm.snapshots.values():     # children inherit the removed snapshot's parent
            if other.get("parent") == name:
                if "parent" in snap:
                    other["parent"] = snap["parent"]
                else:
                    other.pop("parent")
        if vm.parent == name:
            vm.parent = snap.get("parent")

    def failed():
        vm.config.pop("lock", None)
    return pve._new_task(vm.node, "qmdelsnapshot", vm.vmid, ctx.user, action=done, on_fail=failed)


@route("POST", Q + "/snapshot/{snapname}/rollback")
def _snap_rollback(pve, ctx):
    vm = pve._vm(ctx)
    pve._file_lock(vm)
    name = ctx.args["snapname"]
    snap = _snapshot(vm, name)
    pve._check_lock(vm, ctx)
    vm.config["lock"] = "rollback"

    def done():
        _do_stop(vm)
        vm.config = {k: v for k, v in snap.items()
                     if k not in ("snaptime", "description", "parent", "vmstate", "snapstate", "runningmachine")}
        vm.pending.clear()
        vm.pending_delete.clear()
        vm.parent = name
        if "vmstate" in snap or ctx.args.get("start"):
            vm.status, vm.qmpstatus, vm.started = "running", "running", time.time()

    def failed():
        vm.config.pop("lock", None)
    return pve._new_task(vm.node, "qmrollback", vm.vmid, ctx.user, action=done, on_fail=failed)


# -------- metrics and tasks

_RRD_STEP = {"hour": 60, "day": 1800, "week": 10800, "month": 43200, "year": 604800, "decade": 6048000}


@route("GET", Q + "/rrddata")
def _rrddata(pve, ctx):
    vm = pve._vm(ctx)
    step = _RRD_STEP[ctx.args["timeframe"]]
    now = int(time.time()) // step * step
    maxmem = pve._maxmem(vm)
    seed = vm.vmid % 97
    peak = ctx.args.get("cf") == "MAX"
    out = []
    for i in range(70):
        t = now - (69 - i) * step
        wave = ((t // step + seed) % 24) / 24.0
        cpu = round((0.1 + 0.5 * wave) * (1.3 if peak else 1.0), 4) if vm.status == "running" else 0
        out.append({"time": t, "cpu": min(cpu, 1.0), "maxcpu": pve._cpus(vm), "mem": int(maxmem * (0.3 + 0.4 * wave)),
                    "maxmem": maxmem, "netin": 1000.0 * wave, "netout": 500.0 * wave,
                    "diskread": 2000.0 * wave, "diskwrite": 800.0 * wave, "disk": 0, "maxdisk": 32 * GIB})
    return out


def _task(pve: PveStandIn, ctx: _Ctx) -> Task:
    upid = ctx.args["upid"]
    for task in pve.tasks:
        if task.upid == upid and task.node == ctx.args["node"]:
            return task
    raise _fail(f"no such task '{upid}'" if upid.startswith("UPID:") else f"unable to parse worker upid '{upid}'")


@route("GET", "/nodes/{node}/tasks")
def _tasks(pve, ctx):
    a = ctx.args
    items = [t for t in reversed(pve.tasks) if t.node == a["node"]]
    source = a.get("source", "archive")
    if source == "active":
        items = [t for t in items if t.status == "running"]
    elif source == "archive":
        items = [t for t in items if t.status == "stopped"]
    if "vmid" in a:
        items = [t for t in items if t.vmid == a["vmid"]]
    if a.get("typefilter"):
        items = [t for t in items if t.type == a["typefilter"]]
    if a.get("userfilter"):
        items = [t for t in items if a["userfilter"] in t.user]
    if a.get("errors"):
        items = [t for t in items if t.status == "stopped" and t.exitstatus != "OK"]
    if "since" in a:
        items = [t for t in items if t.starttime >= a["since"]]
    if "until" in a:
        items = [t for t in items if t.starttime <= a["until"]]
    start, limit = a.get("start", 0), a.get("limit", 50)
    out = []
    for t in items[start:start + limit]:
        d = t.public()
        if t.status == "stopped":
            d["status"] = t.exitstatus
        out.append(d)
    return out


@route("GET", "/nodes/{node}/tasks/{upid}")
def _task_dir(pve, ctx):
    _task(pve, ctx)
    return [{"name": "log"}, {"name": "status"}]


@route("GET", "/nodes/{node}/tasks/{upid}/status")
def _task_status(pve, ctx):
    return _task(pve, ctx).public()


@route("GET", "/nodes/{node}/tasks/{upid}/log")
def _task_log(pve, ctx):
    task = _task(pve, ctx)
    lines = [f"task started by {task.user}"] + task.log
    start, limit = ctx.args.get("start", 0), ctx.args.get("limit", 50)
    return [{"n": i + 1, "t": line} for i, line in enumerate(lines)][start:start + limit]


@route("DELETE", "/nodes/{node}/tasks/{upid}")
def _task_stop(pve, ctx):
    task = _task(pve, ctx)
    if task.status == "running":
        task.fail_with = "interrupted by signal"
        task.deadline = 0
        pve._advance()
    return None


_ROUTES.update(pve_firewall.ROUTES)   # cluster IP sets, VM rules and options (pve_firewall.py)


# --------------------------------------------------------------------------------------------------
# HTTP transport
# --------------------------------------------------------------------------------------------------


class _TlsServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, ctx: ssl.SSLContext, stand_in: PveStandIn):
        super().__init__(addr, handler)
        self.ssl_ctx = ctx
        self.stand_in = stand_in

    def handle_error(self, request, client_address):
        # A client that refuses our certificate (the wrong-CA tests) ends the handshake: expected, not an error.
        if isinstance(sys.exc_info()[1], (ssl.SSLError, ConnectionError)):
            return
        super().handle_error(request, client_address)

    def get_request(self):
        # Handshake in the handler thread, so one stalled client cannot block accept().
        sock, addr = self.socket.accept()
        # http.server writes the status line + headers and the body in separate sends: with Nagle on, the body waits
        # for the client's delayed ACK (~40 ms a request on Linux), a latency real PVE does not have.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.ssl_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


class _HttpHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pve-api-daemon/3.0"
    sys_version = ""

    def log_message(self, fmt, *args):  # quiet; the stand-in keeps its own request log
        pass

    def setup(self):
        try:
            self.request.do_handshake()
        except (ssl.SSLError, OSError):
            self.request.close()
            raise
        super().setup()

    def handle(self):
        try:
            super().handle()
        except (ssl.SSLError, ConnectionError):
            pass

    def do_GET(self):
        self._serve("GET")

    def do_POST(self):
        self._serve("POST")

    def do_PUT(self):
        self._serve("PUT")

    def do_DELETE(self):
        self._serve("DELETE")

    def _params(self) -> dict[str, Any]:
        parsed = urllib.parse.urlsplit(self.path)
        pairs = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if body and ctype == "application/json":
            data = json.loads(body.decode() or "{}")
            return {k: v for k, v in data.items() if v is not None}
        if body:
            pairs += urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
        out: dict[str, Any] = {}
        for k, v in pairs:   # repeated keys (arrays) become lists, as PVE's form parser does
            if k in out:
                out[k] = (out[k] if isinstance(out[k], list) else [out[k]]) + [v]
            else:
                out[k] = v
        return out

    def _serve(self, method: str) -> None:
        pve: PveStandIn = self.server.stand_in
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        if not path.startswith("/api2/json/") and path != "/api2/json":
            return self._send(501, f"Method '{method} {path}' not implemented", None, None)
        api_path = path[len("/api2/json"):] or "/"
        try:
            params = self._params()
        except (ValueError, UnicodeDecodeError):
            return self._send(400, "Parameter verification failed.", None, {"body": "unable to parse body\n"})
        cookies = {}
        for part in (self.headers.get("Cookie") or "").split(";"):
            if "=" in part:
                k, v = part.strip().split("=", 1)
                cookies[k] = urllib.parse.unquote(v)
        headers = {k.lower(): v for k, v in self.headers.items()}
        status, reason, data, errors = pve.handle(method, api_path, params, headers, cookies)
        self._send(status, reason, data, errors)

    def _send(self, status: int, reason: str, data: Any, errors: dict | None) -> None:
        body: dict[str, Any] = {"data": data}
        if status >= 400:
            body["message"] = reason if reason.endswith("\n") else reason + "\n"
            if errors:
                body["errors"] = errors
        raw = json.dumps(body).encode()
        line = " ".join(reason.split()).encode("latin-1", "replace").decode("latin-1")
        self.send_response(status, line)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(raw)))
        self.send_header("Cache-Control", "max-age=0")
        self.end_headers()
        self.wfile.write(raw)


# --------------------------------------------------------------------------------------------------
# Standalone
# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    import argparse
    ap = argparse.ArgumentParser(description="Run the Proxmox VE API stand-in (tests/demo only).")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--state-dir", default=None, help="where the CA file is written")
    ap.add_argument("--nodes", default="pve1,pve2")
    ap.add_argument("--task-duration", type=float, default=0.1)
    ap.add_argument("--template", action="append", default=[], metavar="NODE:VMID:NAME",
                    help="preload a template VM (repeatable)")
    opts = ap.parse_args(argv)
    pve = PveStandIn(nodes=tuple(opts.nodes.split(",")), port=opts.port, state_dir=opts.state_dir,
                     task_duration=opts.task_duration)
    for spec in opts.template:
        node, vmid, name = spec.split(":", 2)
        pve.add_template(node, int(vmid), name)
    pve.start()
    print(json.dumps(pve.connection_info()), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        pve.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
