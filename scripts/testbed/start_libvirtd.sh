#!/usr/bin/env bash
# Start the ShadowDesk test bed's libvirt daemons without systemd, idempotently.
#  - /dev/kvm: group kvm, mode 660 (else libvirtd re-probes QEMU on every API call, ~10x slower)
#  - virtlogd -d, then libvirtd -d, unless their sockets already answer
#  - waits until `virsh -c qemu:///system version` answers
#  - defines/starts the isolated network `shadowdesk-isolated` (no <forward>, no <ip>: no DHCP, no route anywhere)
#  - defines/builds/starts the dir storage pool `shadowdesk` at /var/lib/libvirt/images/shadowdesk
# Quiet on success; on failure prints what failed and the tail of the daemon log.
# Usage: scripts/testbed/start_libvirtd.sh
set -euo pipefail

URI=qemu:///system
NET_NAME=shadowdesk-isolated
NET_BRIDGE=sdisol0
POOL_NAME=shadowdesk
POOL_DIR=/var/lib/libvirt/images/shadowdesk
LOG_DIR=/var/log/libvirt
RUN_DIR=/run/libvirt

die() {
  printf '[shadowdesk testbed] ERROR: %s\n' "$1" >&2
  for f in "$LOG_DIR/virtlogd.log" "$LOG_DIR/libvirtd.log"; do
    [ -s "$f" ] && { printf -- '--- last lines of %s:\n' "$f" >&2; tail -n 15 "$f" >&2; }
  done
  exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root"
for b in virsh libvirtd virtlogd; do
  command -v "$b" >/dev/null || die "$b not found: run scripts/bootstrap.sh"
done

# 1. /dev/kvm permissions (only if the device exists; the test bed uses TCG anyway).
if [ -c /dev/kvm ]; then
  chgrp kvm /dev/kvm 2>/dev/null || true
  chmod 660 /dev/kvm 2>/dev/null || true
fi

mkdir -p "$LOG_DIR" "$RUN_DIR"

virsh_ok() { timeout 10 virsh -q -c "$URI" version >/dev/null 2>&1; }

# A unix socket "answers" if connect() succeeds (pgrep is useless: zombies stay in the table).
sock_ok() {
  [ -S "$1" ] || return 1
  timeout 5 virt-admin -q -c "$2" version >/dev/null 2>&1 && return 0
  # Fallback when virt-admin is missing: bash has no unix-socket client, use any python.
  local py
  py="$(command -v python3 || true)"
  [ -n "$py" ] || return 1
  "$py" - "$1" <<'PY' >/dev/null 2>&1
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(3); s.connect(sys.argv[1])
PY
}

# 2. virtlogd (needed by libvirtd for QEMU logs / chardev <log>)
if ! sock_ok "$RUN_DIR/virtlogd-sock" virtlogd:///system; then
  LIBVIRT_LOG_OUTPUTS="3:file:$LOG_DIR/virtlogd.log" virtlogd -d || die "virtlogd -d failed"
  for _ in $(seq 50); do sock_ok "$RUN_DIR/virtlogd-sock" virtlogd:///system && break; sleep 0.1; done
  sock_ok "$RUN_DIR/virtlogd-sock" virtlogd:///system || die "virtlogd did not come up ($RUN_DIR/virtlogd-sock)"
fi

# 3. libvirtd
if ! virsh_ok; then
  LIBVIRT_LOG_OUTPUTS="3:file:$LOG_DIR/libvirtd.log" libvirtd -d || die "libvirtd -d failed"
  for _ in $(seq 300); do virsh_ok && break; sleep 0.1; done
  virsh_ok || die "libvirtd did not answer 'virsh -c $URI version' within 30 s"
fi

v() { virsh -q -c "$URI" "$@"; }

# 4. isolated network: no <forward> (no NAT, no route), no <ip> (no dnsmasq, no DHCP).
if ! v net-info "$NET_NAME" >/dev/null 2>&1; then
  tmp="$(mktemp)"
  cat >"$tmp" <<XML
<network>
  <name>$NET_NAME</name>
  <bridge name='$NET_BRIDGE' stp='off' delay='0'/>
</network>
XML
  out="$(v net-define "$tmp" 2>&1)" || { rm -f "$tmp"; die "net-define $NET_NAME: $out"; }
  rm -f "$tmp"
fi
# (no `| grep -q`: with pipefail, grep's early exit SIGPIPEs virsh and fails the pipeline)
if ! [[ "$(v net-info "$NET_NAME" 2>/dev/null)" =~ Active:[[:space:]]+yes ]]; then
  out="$(v net-start "$NET_NAME" 2>&1)" || die "net-start $NET_NAME: $out"
fi
v net-autostart "$NET_NAME" >/dev/null 2>&1 || true

# 5. dir storage pool
mkdir -p "$POOL_DIR"
chmod 0711 "$POOL_DIR"
if ! v pool-info "$POOL_NAME" >/dev/null 2>&1; then
  out="$(v pool-define-as "$POOL_NAME" dir --target "$POOL_DIR" 2>&1)" || die "pool-define-as $POOL_NAME: $out"
fi
if ! [[ "$(v pool-info "$POOL_NAME" 2>/dev/null)" =~ State:[[:space:]]+running ]]; then
  out="$(v pool-start "$POOL_NAME" 2>&1)" || die "pool-start $POOL_NAME: $out"
fi
v pool-autostart "$POOL_NAME" >/dev/null 2>&1 || true
exit 0
