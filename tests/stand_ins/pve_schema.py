"""Proxmox VE API schema loading and request-parameter validation (test stand-in only).

The validator is driven by the schema PVE publishes with its docs (``apidata.js``, stored as JSON in
``../shared/pve`` beside the repository root). It copies the rules of PVE's own ``PVE::JSONSchema`` dialect rather than standard
JSON Schema:

* parameters are required unless ``optional: 1``; unknown parameters are rejected;
* booleans are ``0/1`` and also ``on/off``, ``yes/no``, ``true/false`` (case-insensitive);
* ``format`` is either a *named* format (a verifier registered in this module) or an *inline* dict that
  describes a property string ``key=value,...`` with ``default_key``, ``alias`` and ``keyAlias``;
* indexed keys such as ``net[n]`` carry no range in the schema: the ranges below copy qemu-server /
  pve-container constants;
* error messages copy PVE's wording (including the trailing newline PVE keeps in ``errors``).

Named formats that this module cannot verify make validation raise :class:`UnsupportedFormat` instead of
silently accepting the value: a stand-in that accepts what real PVE rejects would hide client bugs.
"""
from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

# ``../shared`` beside the repository root (tests/stand_ins -> repo root is two levels up).
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_SCHEMA_PATH = os.environ.get(
    "SHADOWDESK_PVE_APIDATA",
    os.path.join(os.path.dirname(_REPO_ROOT), "shared", "pve", "pve-apidata-9.1.3.json"),
)


class SchemaMissing(Exception):
    """The PVE API schema file is not where the stand-in looks for it."""

# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class ParameterError(Exception):
    """Raised with PVE's per-parameter ``errors`` mapping (HTTP 400 'Parameter verification failed.')."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("Parameter verification failed.")
        self.errors = errors


class UnsupportedFormat(Exception):
    """A named format used by the request is not implemented by the stand-in (fail closed)."""

    def __init__(self, format_name: str, param: str):
        super().__init__(f"stand-in cannot verify format '{format_name}' (parameter '{param}')")
        self.format_name = format_name
        self.param = param


class FormatError(Exception):
    """A value does not satisfy a named format. ``str()`` is PVE's message."""


# --------------------------------------------------------------------------------------------------
# Indexed keys (``net[n]``): ranges are qemu-server / pve-container / pve-manager constants.
# --------------------------------------------------------------------------------------------------

QEMU_INDEX_LIMITS = {
    "net": 32, "ipconfig": 32, "scsi": 31, "virtio": 16, "ide": 4, "sata": 6, "hostpci": 16,
    "unused": 256, "usb": 14, "serial": 4, "parallel": 3, "numa": 8, "virtiofs": 10,
}
LXC_INDEX_LIMITS = {"net": 32, "mp": 256, "unused": 256, "dev": 256}
OTHER_INDEX_LIMITS = {"acmedomain": 5, "link": 8}

_INDEXED_RE = re.compile(r"^([a-z][a-z_-]*?)(\d+)$")


def index_limits_for(path_template: str) -> dict[str, int]:
    """Which index ranges apply depends on the API area (qemu vs lxc share names like ``net``)."""
    if "/qemu" in path_template:
        return QEMU_INDEX_LIMITS
    if "/lxc" in path_template:
        return LXC_INDEX_LIMITS
    return OTHER_INDEX_LIMITS


def lookup_property(props: dict, key: str, limits: dict[str, int]) -> dict | None:
    """Schema for ``key``: an exact property, or ``name[n]`` when ``key`` is ``name<i>`` with i in range."""
    if key in props:
        return props[key]
    m = _INDEXED_RE.match(key)
    if not m:
        return None
    base, idx = m.group(1), m.group(2)
    if len(idx) > 1 and idx.startswith("0"):
        return None  # PVE's expanded schema has net1, never net01
    schema = props.get(f"{base}[n]")
    if schema is None or int(idx) >= limits.get(base, 0):
        return None
    return schema


# --------------------------------------------------------------------------------------------------
# Scalar helpers (PVE::JSONSchema semantics)
# --------------------------------------------------------------------------------------------------

_TRUE = {"1", "on", "yes", "true"}
_FALSE = {"0", "off", "no", "false"}
_INT_RE = re.compile(r"^[+-]?\d+$")
_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_boolean(value: Any) -> int | None:
    """PVE accepts 1/0, on/off, yes/no, true/false (any case); anything else is not a boolean."""
    if isinstance(value, bool):
        return int(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    return None


def _number(value: Any, kind: str) -> int | float | None:
    if isinstance(value, bool):
        return None
    if kind == "integer":
        if isinstance(value, int):
            return value
        return int(str(value)) if _INT_RE.match(str(value)) else None
    if isinstance(value, (int, float)):
        return value
    return float(str(value)) if _NUM_RE.match(str(value)) else None


@functools.lru_cache(maxsize=None)
def perl_pattern(pattern: str) -> re.Pattern:
    """Compile a schema pattern the way PVE applies it: ``m/^$pattern$/`` in Perl.

    The schema holds stringified Perl ``qr//`` objects such as ``(?^i:...)``; Python spells the same
    group ``(?i:...)``. The anchors are concatenated without a group, exactly as PVE interpolates them.
    """
    translated = re.sub(r"\(\?\^([a-z]*):", lambda m: f"(?{m.group(1)}:" if m.group(1) else "(?:", pattern)
    return re.compile(f"^{translated}$")


def split_list(value: str) -> list[str]:
    """PVE::Tools::split_list: separators are ',', ';' and whitespace; empty parts vanish."""
    return [p for p in re.split(r"[,;\s]+", value.replace("\0", "")) if p]


# --------------------------------------------------------------------------------------------------
# Named formats
# --------------------------------------------------------------------------------------------------

Verifier = Callable[[str], None]
NAMED_FORMATS: dict[str, Verifier | dict] = {}


def register(name: str):
    def deco(fn: Verifier) -> Verifier:
        NAMED_FORMATS[name] = fn
        return fn
    return deco


def _regex_format(name: str, pattern: str, message: str, flags: int = 0) -> None:
    rx = re.compile(pattern, flags)

    def verify(value: str) -> None:
        if not rx.fullmatch(value):
            raise FormatError(message.format(value=value))
    NAMED_FORMATS[name] = verify


_HOST_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?"
_DNS_NAME = rf"(?:{_HOST_LABEL}\.)*{_HOST_LABEL}"
_STORAGE_ID = r"[a-z][a-z0-9\-_.]*[a-z0-9]"
_CONFIGID = r"[a-z][a-z0-9_-]+"

_regex_format("pve-node", _HOST_LABEL, "value does not look like a valid node name")
_regex_format("pve-vmid", r"[1-9][0-9]{2,8}", "value does not look like a valid VM ID")
_regex_format("pve-configid", _CONFIGID, "invalid configuration ID '{value}'", re.I)
_regex_format("pve-storage-id", _STORAGE_ID, "storage ID '{value}' contains illegal characters", re.I)
_regex_format("pve-poolid", r"[A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-]+){0,2}",
              "pool name '{value}' contains illegal characters")
_regex_format("pve-bridge-id", r"[-_.\w]{1,15}", "invalid bridge ID '{value}'", re.A)
_regex_format("pve-volume-id", rf"{_STORAGE_ID}:.+", "unable to parse volume ID '{value}'", re.I)
_regex_format("disk-size", r"\d+(?:\.\d+)?[KMGT]?", "unable to parse size '{value}'")
_regex_format("urlencoded", r"[-%a-zA-Z0-9_.!~*'()]*", "value '{value}' is not urlencoded")
_regex_format("pve-userid", r"[^\s:/]{1,60}@[A-Za-z][A-Za-z0-9.\-_]+",
              "value '{value}' does not look like a valid user name")
_regex_format("pve-realm", r"[A-Za-z][A-Za-z0-9.\-_]+", "realm ID '{value}' contains illegal characters")
_regex_format("pve-groupid", r"[A-Za-z0-9.\-_]+", "group name '{value}' contains illegal characters")
_regex_format("pve-roleid", r"[A-Za-z0-9.\-_]+", "role name '{value}' contains illegal characters")
_regex_format("pve-priv-list", r"[A-Za-z.]+(?:[,;\s]+[A-Za-z.]+)*", "invalid privilege list")
_regex_format("dns-name", _DNS_NAME, "value does not look like a valid DNS name")
_regex_format("pve-storage-path", r"/.*", "value does not look like a valid absolute path")
_regex_format("pve-qm-bootdisk", r"(?:ide|sata|scsi|virtio|efidisk|tpmstate)\d+",
              "invalid boot disk '{value}'")
_regex_format("pve-cpuset", r"\d+(?:-\d+)?(?:,\d+(?:-\d+)?)*", "invalid cpuset '{value}'")
_regex_format("pve-iface", r"[a-zA-Z][a-zA-Z0-9_.\-]{1,20}", "invalid network interface name '{value}'")
_regex_format("pve-storage-content",
              r"images|rootdir|vztmpl|iso|backup|snippets|import", "invalid content type '{value}'")
_regex_format("pve-task-status-type", r"ok|error|warning|unknown", "invalid task status type '{value}'")
_regex_format("email-opt", r"[\w+\-~.]+@[a-zA-Z0-9\-]+(?:\.[a-zA-Z0-9\-]+)*|",
              "value does not look like a valid email address")
_regex_format("pve-day-of-week", r"mon|tue|wed|thu|fri|sat|sun", "invalid day of week '{value}'")


@register("pve-tag-list")
def _verify_tag_list(value: str) -> None:
    for tag in split_list(value):
        if not re.fullmatch(r"[a-z0-9_][a-z0-9_\-+.]*", tag, re.I):
            raise FormatError(f"invalid tag '{tag}'")


_HOTPLUG_FEATURES = ("network", "disk", "cpu", "memory", "usb", "cloudinit")


def parse_hotplug(value: str | None) -> set[str]:
    """qemu-server parse_hotplug_features: '0' = none, '1' = default, else a feature list."""
    if value is None or value == "1":
        return {"network", "disk", "usb"}
    if value == "0":
        return set()
    feats = set()
    for feat in (f.strip() for f in value.split(",")):
        if feat not in _HOTPLUG_FEATURES:
            raise FormatError(f"invalid hotplug feature '{feat}'")
        feats.add(feat)
    return feats


@register("pve-hotplug-features")
def _verify_hotplug(value: str) -> None:
    try:
        parse_hotplug(value)
    except FormatError as exc:
        raise FormatError(f"invalid value '{value}'") from exc


@register("mac-addr")
def _verify_mac(value: str) -> None:
    if not re.fullmatch(r"[a-f0-9]{2}(?::[a-f0-9]{2}){5}", value, re.I):
        raise FormatError("value does not look like a valid MAC address")
    if int(value[:2], 16) & 1:
        raise FormatError("value is not a valid unicast MAC address")


def _ip_verifier(name: str, kinds: tuple, message: str, network: bool = False, strict_cidr=False):
    def verify(value: str) -> None:
        try:
            if network or strict_cidr:
                if strict_cidr and "/" not in value:
                    raise ValueError
                obj = ipaddress.ip_interface(value)
            else:
                obj = ipaddress.ip_address(value)
        except ValueError:
            raise FormatError(message.format(value=value)) from None
        if type(obj).__name__.replace("Interface", "Address") not in kinds:
            raise FormatError(message.format(value=value))
    NAMED_FORMATS[name] = verify


_ip_verifier("ip", ("IPv4Address", "IPv6Address"), "value does not look like a valid IP address")
_ip_verifier("ipv4", ("IPv4Address",), "value does not look like a valid IPv4 address")
_ip_verifier("ipv6", ("IPv6Address",), "value does not look like a valid IPv6 address")
_ip_verifier("CIDR", ("IPv4Address", "IPv6Address"), "value does not look like a valid CIDR network",
             strict_cidr=True)
_ip_verifier("CIDRv4", ("IPv4Address",), "value does not look like a valid IPv4 CIDR network",
             strict_cidr=True)
_ip_verifier("CIDRv6", ("IPv6Address",), "value does not look like a valid IPv6 CIDR network",
             strict_cidr=True)
_ip_verifier("IPorCIDR", ("IPv4Address", "IPv6Address"), "value does not look like a valid IP address or CIDR network",
             network=True)


@register("ipv4mask")
def _verify_ipv4mask(value: str) -> None:
    try:
        ipaddress.IPv4Network(f"0.0.0.0/{value}")
    except ValueError:
        raise FormatError("value does not look like a valid IP netmask") from None


@register("address")
def _verify_address(value: str) -> None:
    try:
        NAMED_FORMATS["ip"](value)  # type: ignore[operator]
    except FormatError:
        if not re.fullmatch(_DNS_NAME, value):
            raise FormatError("value does not look like a valid address: " + value) from None


@register("pve-volume-id-or-qm-path")
def _verify_volume_or_qm_path(value: str) -> None:
    # qemu-server accepts the literals 'none' and 'cdrom', absolute paths and volume IDs
    # (including the STORAGE:SIZE allocation syntax, which is a volume ID lexically).
    if value in ("none", "cdrom") or value.startswith("/"):
        return
    NAMED_FORMATS["pve-volume-id"](value)  # type: ignore[operator]


@register("pve-volume-id-or-absolute-path")
def _verify_volume_or_abs_path(value: str) -> None:
    if value.startswith("/"):
        return
    NAMED_FORMATS["pve-volume-id"](value)  # type: ignore[operator]


@register("storage-pair-list")
def _verify_storage_pairs(value: str) -> None:
    for pair in split_list(value):
        parts = pair.split(":")
        if len(parts) > 2 or not all(re.fullmatch(_STORAGE_ID, p, re.I) or p == "1" for p in parts):
            raise FormatError(f"invalid storage pair '{pair}'")


# Named property-string formats used by qemu-server (the schema only names them; definitions copied
# from their typetext and qemu-server's registrations).
_BOOL = {"type": "boolean", "optional": 1}
_HEXID = {"type": "string", "pattern": r"0x[0-9a-fA-F]{4}", "optional": 1}
_PCI_ID = r"(?:[a-f0-9]{4,}:)?[a-f0-9]{2}:[a-f0-9]{2}(?:\.[a-f0-9])?"
CPU_MODELS = (
    "486 athlon Broadwell Broadwell-IBRS Broadwell-noTSX Broadwell-noTSX-IBRS Cascadelake-Server "
    "Cascadelake-Server-noTSX Cascadelake-Server-v2 Cascadelake-Server-v4 Cascadelake-Server-v5 Conroe "
    "Cooperlake Cooperlake-v2 core2duo coreduo EPYC EPYC-Genoa EPYC-IBPB EPYC-Milan EPYC-Milan-v2 "
    "EPYC-Rome EPYC-Rome-v2 EPYC-Rome-v3 EPYC-Rome-v4 EPYC-v3 EPYC-v4 GraniteRapids Haswell Haswell-IBRS "
    "Haswell-noTSX Haswell-noTSX-IBRS host Icelake-Client Icelake-Client-noTSX Icelake-Server "
    "Icelake-Server-noTSX Icelake-Server-v3 Icelake-Server-v4 Icelake-Server-v5 Icelake-Server-v6 IvyBridge "
    "IvyBridge-IBRS KnightsMill kvm32 kvm64 max Nehalem Nehalem-IBRS Opteron_G1 Opteron_G2 Opteron_G3 "
    "Opteron_G4 Opteron_G5 Penryn pentium pentium2 pentium3 phenom qemu32 qemu64 SandyBridge "
    "SandyBridge-IBRS SapphireRapids SapphireRapids-v2 Skylake-Client Skylake-Client-IBRS "
    "Skylake-Client-noTSX-IBRS Skylake-Client-v4 Skylake-Server Skylake-Server-IBRS "
    "Skylake-Server-noTSX-IBRS Skylake-Server-v4 Skylake-Server-v5 Westmere Westmere-IBRS x86-64-v2 "
    "x86-64-v2-AES x86-64-v3 x86-64-v4"
).split()
# Only these flags may be set per VM (qemu-server CPUConfig $cpu_flag_supported_re).
VM_CPU_FLAGS = ("pcid spec-ctrl ibpb ssbd virt-ssbd amd-ssbd amd-no-ssb pdpe1gb md-clear hv-tlbflush "
                "hv-evmcs aes").split()
_FLAG_RE = "(?:" + "|".join(re.escape(f) for f in VM_CPU_FLAGS) + ")"
_B64 = {"type": "string", "pattern": r"[A-Za-z0-9+/]+={0,2}", "optional": 1}

NAMED_FORMATS.update({
    "pve-qm-hostpci": {
        "host": {"type": "string", "default_key": 1, "optional": 1, "pattern": rf"(?i:{_PCI_ID}(?:;{_PCI_ID})*)"},
        "mapping": {"type": "string", "format": "pve-configid", "optional": 1},
        "device-id": _HEXID, "vendor-id": _HEXID, "sub-device-id": _HEXID, "sub-vendor-id": _HEXID,
        "driver": {"type": "string", "enum": ["vfio", "keep"], "optional": 1},
        "legacy-igd": _BOOL, "pcie": _BOOL, "rombar": _BOOL, "x-vga": _BOOL,
        "mdev": {"type": "string", "format_description": "string", "optional": 1},
        "romfile": {"type": "string", "optional": 1},
    },
    "pve-vm-cpu-conf": {
        "cputype": {"type": "string", "default_key": 1, "optional": 1, "format": "pve-cpu-model"},
        "flags": {"type": "string", "optional": 1, "pattern": rf"[+-]{_FLAG_RE}(?:;[+-]{_FLAG_RE})*"},
        "hidden": _BOOL,
        "hv-vendor-id": {"type": "string", "pattern": r"[a-zA-Z0-9]{1,12}", "optional": 1},
        "phys-bits": {"type": "string", "pattern": r"(?:[89]|[1-5][0-9]|6[0-4]|host)", "optional": 1},
        "guest-phys-bits": {"type": "integer", "minimum": 32, "maximum": 64, "optional": 1},
        "reported-model": {"type": "string", "enum": [m for m in CPU_MODELS if m != "host"], "optional": 1},
    },
    "pve-qm-boot": {
        "legacy": {"type": "string", "default_key": 1, "optional": 1, "pattern": r"[acdn]{1,4}"},
        "order": {"type": "string", "optional": 1, "format": "pve-qm-bootdev-list"},
    },
    "pve-qm-ipconfig": {
        "ip": {"type": "string", "optional": 1, "format": "pve-ipv4-config"},
        "gw": {"type": "string", "optional": 1, "format": "ipv4"},
        "ip6": {"type": "string", "optional": 1, "format": "pve-ipv6-config"},
        "gw6": {"type": "string", "optional": 1, "format": "ipv6"},
    },
    "pve-qm-watchdog": {
        "model": {"type": "string", "default_key": 1, "optional": 1, "enum": ["i6300esb", "ib700"]},
        "action": {"type": "string", "optional": 1,
                   "enum": ["reset", "shutdown", "poweroff", "pause", "debug", "none"]},
    },
    "pve-qm-rng": {
        "source": {"type": "string", "default_key": 1, "enum": ["/dev/urandom", "/dev/random", "/dev/hwrng"]},
        "max_bytes": {"type": "integer", "optional": 1, "minimum": 0},
        "period": {"type": "integer", "optional": 1, "minimum": 0},
    },
    "pve-qm-smbios1": {
        "uuid": {"type": "string", "optional": 1,
                 "pattern": r"[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}"},
        "base64": _BOOL, "family": _B64, "manufacturer": _B64, "product": _B64, "serial": _B64,
        "sku": _B64, "version": _B64,
    },
    "pve-qemu-sev-fmt": {
        "type": {"type": "string", "default_key": 1, "enum": ["std", "es", "snp"]},
        "allow-smt": _BOOL, "kernel-hashes": _BOOL, "no-debug": _BOOL, "no-key-sharing": _BOOL,
    },
    "pve-qemu-tdx-fmt": {
        "type": {"type": "string", "default_key": 1, "enum": ["tdx"]},
        "attestation": {"type": "boolean"},
        "vsock-cid": {"type": "integer", "optional": 1, "minimum": 2},
        "vsock-port": {"type": "integer", "optional": 1, "minimum": 0},
    },
    "pve-qm-cicustom": {k: {"type": "string", "optional": 1, "format": "pve-volume-id"}
                        for k in ("meta", "network", "user", "vendor")},
    "pve-startup-order": {
        "order": {"type": "integer", "default_key": 1, "optional": 1, "minimum": 0},
        "up": {"type": "integer", "optional": 1, "minimum": 0},
        "down": {"type": "integer", "optional": 1, "minimum": 0},
    },
    "prune-backups": {
        "keep-all": _BOOL,
        **{f"keep-{k}": {"type": "integer", "optional": 1, "minimum": 0}
           for k in ("last", "hourly", "daily", "weekly", "monthly", "yearly")},
    },
})


@register("pve-cpu-model")
def _verify_cpu_model(value: str) -> None:
    if value in CPU_MODELS:
        return
    if value.startswith("custom-"):
        # The stand-in's cluster has no /etc/pve/virtual-guest/cpu-models.conf entries.
        raise FormatError(f"custom cpu model '{value[7:]}' does not exist")
    raise FormatError(f"Built-in cputype '{value}' is not defined (missing 'custom-' prefix?)")


@register("pve-ipv4-config")
def _verify_ipv4_config(value: str) -> None:
    if value in ("dhcp", "manual"):
        return
    NAMED_FORMATS["CIDRv4"](value)  # type: ignore[operator]


@register("pve-ipv6-config")
def _verify_ipv6_config(value: str) -> None:
    if value in ("dhcp", "auto", "manual"):
        return
    NAMED_FORMATS["CIDRv6"](value)  # type: ignore[operator]


_DRIVE_KEY_RE = re.compile(r"^(ide|sata|scsi|virtio)(\d+)$")


def is_valid_drive_name(key: str) -> bool:
    m = _DRIVE_KEY_RE.match(key)
    return bool(m) and int(m.group(2)) < QEMU_INDEX_LIMITS[m.group(1)]


@register("pve-qm-bootdev")
def _verify_bootdev(value: str) -> None:
    m = _INDEXED_RE.match(value)
    if is_valid_drive_name(value):
        return
    if m and m.group(1) in ("net", "hostpci", "usb") and int(m.group(2)) < QEMU_INDEX_LIMITS[m.group(1)]:
        return
    raise FormatError(f"invalid boot device '{value}'")


@register("pve-qm-bootdev-list")
def _verify_bootdev_list(value: str) -> None:
    for dev in value.split(";"):
        _verify_bootdev(dev)


# --------------------------------------------------------------------------------------------------
# Property strings
# --------------------------------------------------------------------------------------------------


def parse_property_string(fmt: dict, text: str) -> dict[str, str]:
    """Split ``key=value,...`` like PVE::JSONSchema::parse_property_string (no validation of values).

    Handles ``default_key`` (one value without key), ``alias`` (``volume`` -> ``file``) and ``keyAlias``
    (``virtio=MAC`` means ``model=virtio,macaddr=MAC``). Raises FormatError with PVE's messages.
    """
    res: dict[str, str] = {}
    default_key = next((k for k, s in fmt.items() if isinstance(s, dict) and s.get("default_key")), None)
    used_default = False
    for part in text.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            if default_key is None:
                raise FormatError("value without key, but schema does not define a default key")
            if used_default or default_key in res:
                raise FormatError(f"duplicate key in comma-separated list property: {default_key}")
            res[default_key] = part
            used_default = True
            continue
        key, val = part.split("=", 1)
        if not key or not val:
            raise FormatError("missing key in comma-separated list property" if not key else
                              f"missing value for key '{key}'")
        if key in res:
            raise FormatError(f"duplicate key in comma-separated list property: {key}")
        schema = fmt.get(key)
        if isinstance(schema, dict) and schema.get("alias"):
            if schema.get("keyAlias"):
                if schema["keyAlias"] in res:
                    raise FormatError(f"key alias '{schema['keyAlias']}' is already defined")
                res[schema["keyAlias"]] = key
            key = schema["alias"]
            schema = fmt.get(key)
            if key in res:
                raise FormatError(f"duplicate key in comma-separated list property: {key}")
        if not isinstance(schema, dict):
            raise FormatError(f"invalid key in comma-separated list property: {key}")
        res[key] = val
    return res


def print_property_string(fmt: dict, values: dict[str, Any]) -> str:
    """Inverse of parse_property_string: default key first without ``key=``, others sorted."""
    default_key = next((k for k, s in fmt.items() if isinstance(s, dict) and s.get("default_key")), None)
    parts = []
    if default_key and default_key in values:
        parts.append(str(values[default_key]))
    parts += [f"{k}={v}" for k, v in sorted(values.items()) if k != default_key]
    return ",".join(parts)


# --------------------------------------------------------------------------------------------------
# Validator
# --------------------------------------------------------------------------------------------------


@dataclass
class Validator:
    """Checks values against PVE schema fragments; collects errors keyed like PVE (``net0.rate``)."""

    errors: dict[str, str] = field(default_factory=dict)

    def add(self, path: str, message: str) -> None:
        self.errors.setdefault(path, message if message.endswith("\n") else message + "\n")

    def check_object(self, path: str | None, props: dict, values: dict[str, Any],
                     limits: dict[str, int], additional: bool = False) -> dict[str, Any]:
        """Validate a parameter dict (or a parsed property string) against ``props``."""
        out: dict[str, Any] = {}
        for key, value in values.items():
            sub = f"{path}.{key}" if path else key
            schema = lookup_property(props, key, limits)
            if schema is None:
                if not additional:
                    self.add(sub, "property is not defined in schema and the schema does not allow "
                                  "additional properties")
                else:
                    out[key] = value
                continue
            checked = self.check_prop(sub, schema, value, limits)
            if checked is not _INVALID:
                out[key] = checked
        for key, schema in props.items():
            if not isinstance(schema, dict) or "[n]" in key or schema.get("alias"):
                continue
            if not schema.get("optional") and key not in values:
                self.add(f"{path}.{key}" if path else key, "property is missing and it is not optional")
            requires = schema.get("requires")
            if requires and key in values and requires not in values:
                self.add(f"{path}.{requires}" if path else requires,
                         f"missing property - '{key}' requires this property")
        return out

    def check_prop(self, path: str, schema: dict, value: Any, limits: dict[str, int]) -> Any:
        kind = schema.get("type")
        if isinstance(value, list) and kind != "array":
            self.add(path, f"type check ('{kind}') failed - got ARRAY")
            return _INVALID
        if kind == "array":
            items = value if isinstance(value, list) else [value]
            item_schema = schema.get("items") or {}
            res = [self.check_prop(path, item_schema, v, limits) for v in items]
            return _INVALID if _INVALID in res else res
        if kind == "boolean":
            b = parse_boolean(value)
            if b is None:
                self.add(path, f"type check ('boolean') failed - got '{value}'")
                return _INVALID
            return b
        if kind in ("integer", "number"):
            n = _number(value, kind)
            if n is None:
                self.add(path, f"type check ('{kind}') failed - got '{value}'")
                return _INVALID
            # PVE::JSONSchema compares numerically (Perl): a bound the schema writes as a string ("0") is a number
            if "minimum" in schema and n < _number(str(schema["minimum"]), "number"):
                self.add(path, f"value must have a minimum value of {schema['minimum']}")
                return _INVALID
            if "maximum" in schema and n > _number(str(schema["maximum"]), "number"):
                self.add(path, f"value must have a maximum value of {schema['maximum']}")
                return _INVALID
            if not self._check_enum(path, schema, value) or not self._check_format(path, schema, str(value), limits):
                return _INVALID
            return n
        if kind == "object" and isinstance(value, dict):
            return self.check_object(path, schema.get("properties") or {}, value, limits,
                                     bool(schema.get("additionalProperties", 0)))
        text = str(value)
        if "maxLength" in schema and len(text) > schema["maxLength"]:
            self.add(path, f"value may only be {schema['maxLength']} characters long")
            return _INVALID
        if "minLength" in schema and len(text) < schema["minLength"]:
            self.add(path, f"value must be at least {schema['minLength']} characters long")
            return _INVALID
        if "pattern" in schema and not perl_pattern(schema["pattern"]).search(text):
            self.add(path, "value does not match the regex pattern")
            return _INVALID
        if not self._check_enum(path, schema, text) or not self._check_format(path, schema, text, limits):
            return _INVALID
        return text

    def _check_enum(self, path: str, schema: dict, value: Any) -> bool:
        enum = schema.get("enum")
        if enum is not None and str(value) not in [str(e) for e in enum]:
            self.add(path, f"value '{value}' does not have a value in the enumeration '{', '.join(map(str, enum))}'")
            return False
        return True

    def _check_format(self, path: str, schema: dict, text: str, limits: dict[str, int]) -> bool:
        fmt = schema.get("format")
        if fmt is None:
            return True
        try:
            check_format(fmt, text, path, limits)
        except FormatError as exc:
            self.add(path, f"invalid format - {exc}")
            return False
        return True


_INVALID = object()


def check_format(fmt: str | dict, text: str, path: str, limits: dict[str, int] | None = None) -> dict | None:
    """Verify ``text`` against a named or inline format; returns the parsed dict for property strings."""
    limits = limits or {}
    if isinstance(fmt, dict):
        return _check_property_string(fmt, text, path, limits)
    verifier = NAMED_FORMATS.get(fmt)
    if verifier is None:
        # PVE derives '<fmt>-list' (split_list of '<fmt>') and '<fmt>-opt' (may be empty) generically.
        if fmt.endswith("-list") and fmt[:-5] in NAMED_FORMATS:
            for item in split_list(text):
                check_format(fmt[:-5], item, path, limits)
            return None
        if fmt.endswith("-opt") and fmt[:-4] in NAMED_FORMATS:
            return None if text == "" else check_format(fmt[:-4], text, path, limits)
        raise UnsupportedFormat(fmt, path)
    if isinstance(verifier, dict):
        return _check_property_string(verifier, text, path, limits)
    verifier(text)
    return None


def _check_property_string(fmt: dict, text: str, path: str, limits: dict[str, int]) -> dict:
    parsed = parse_property_string(fmt, text)
    inner = Validator()
    result = inner.check_object(path, fmt, parsed, limits)
    if inner.errors:
        detail = "".join(f"{k}: {v}" for k, v in sorted(inner.errors.items()))
        raise FormatError("format error\n" + detail.rstrip("\n"))
    return result


# --------------------------------------------------------------------------------------------------
# API tree
# --------------------------------------------------------------------------------------------------


@dataclass
class Endpoint:
    path: str                      # template, e.g. /nodes/{node}/qemu/{vmid}/config
    methods: dict[str, dict]       # METHOD -> info (parameters, returns, ...)
    regex: re.Pattern
    param_names: tuple[str, ...]


@dataclass
class Resolved:
    endpoint: Endpoint
    path_params: dict[str, str]


class ApiSchema:
    """The PVE API tree: path resolution and per-method parameter validation."""

    def __init__(self, path: str = DEFAULT_SCHEMA_PATH):
        if not os.path.isfile(path):
            raise SchemaMissing(
                f"PVE API schema not found at {path}: the stand-in needs ../shared/pve/pve-apidata-9.1.3.json "
                "beside the repository root (or SHADOWDESK_PVE_APIDATA pointing at a copy)"
            )
        with open(path, encoding="utf-8") as fh:
            tree = json.load(fh)
        self.endpoints: dict[str, Endpoint] = {}
        for node in tree:
            self._add(node)
        # Literal segments win over {params}: try templates with fewer params first.
        self._ordered = sorted(self.endpoints.values(), key=lambda e: (len(e.param_names), -len(e.path)))
        self._ide_format = self.method_info("/nodes/{node}/qemu/{vmid}/config", "PUT")[
            "parameters"]["properties"]["ide[n]"]["format"]
        NAMED_FORMATS.setdefault("pve-qm-ide", self._ide_format)

    def _add(self, node: dict) -> None:
        path = node["path"]
        names = tuple(re.findall(r"\{([^}]+)\}", path))
        rx = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(path)) + "$"
        if path.endswith("/{cidr}"):
            # pve-firewall mounts the IP set entries with fragmentDelimiter '': the rest of the path, slash and
            # prefix length included, is the {cidr} (DELETE .../ipset/blk/198.51.100.0/24).
            rx = rx[:-len("([^/]+)$")] + "(.+)$"
        self.endpoints[path] = Endpoint(path, node.get("info") or {}, re.compile(rx), names)
        for child in node.get("children") or []:
            self._add(child)

    def resolve(self, path: str) -> Resolved | None:
        path = "/" + path.strip("/")
        for ep in self._ordered:
            m = ep.regex.match(path)
            if m:
                return Resolved(ep, dict(zip(ep.param_names, m.groups())))
        return None

    def method_info(self, template: str, method: str) -> dict:
        return self.endpoints[template].methods[method]

    def validate(self, template: str, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """Validate request parameters (path params included); returns typed values or raises."""
        info = self.endpoints[template].methods[method]
        pschema = info.get("parameters") or {}
        limits = index_limits_for(template)
        v = Validator()
        out = v.check_object(None, pschema.get("properties") or {}, params, limits,
                             bool(pschema.get("additionalProperties", 0)))
        if v.errors:
            raise ParameterError(v.errors)
        return out

    def formats_used(self, prefixes: Iterable[str]) -> set[str]:
        """Named formats reachable from endpoints under ``prefixes`` (to prove coverage in tests)."""
        found: set[str] = set()

        def scan(schema: Any) -> None:
            if not isinstance(schema, dict):
                return
            fmt = schema.get("format")
            if isinstance(fmt, str):
                found.add(fmt)
            elif isinstance(fmt, dict):
                for sub in fmt.values():
                    scan(sub)
            for sub in (schema.get("properties") or {}).values():
                scan(sub)
            scan(schema.get("items"))

        for ep in self.endpoints.values():
            if any(ep.path.startswith(p) for p in prefixes):
                for info in ep.methods.values():
                    scan(info.get("parameters"))
        return found

    @staticmethod
    def format_supported(name: str) -> bool:
        if name in NAMED_FORMATS:
            return True
        return (name.endswith("-list") and name[:-5] in NAMED_FORMATS) or (
            name.endswith("-opt") and name[:-4] in NAMED_FORMATS)


@functools.lru_cache(maxsize=4)
def load_schema(path: str = DEFAULT_SCHEMA_PATH) -> ApiSchema:
    """Shared, read-only ApiSchema per file (parsing the 435-path tree costs ~0.15 s)."""
    return ApiSchema(path)
