#!/usr/bin/env bash
# Build the ShadowDesk test guest from Debian packages, idempotently and cached, into
# GUEST_DIR=/var/lib/libvirt/images/shadowdesk/guest-<first 12 hex of this script's sha256>/:
#   vmlinuz      Debian bookworm cloud kernel (linux-image-cloud-amd64's target)
#   initrd.img   busybox-static initramfs (uncompressed newc cpio) whose /init loads the virtio modules, starts
#                Debian's real qemu-guest-agent on the org.qemu.guest_agent.0 port and reports on ttyS0
#   golden.qcow2 blank 64 MiB qcow2 (backing file for per-domain overlays)
#   stamp        kernel version + hash of this script
# One directory per recipe: checkouts with different versions of this script (parallel sessions, branches) each
# keep their own cached guest instead of rebuilding over each other's. `build_guest.sh --print-dir` prints it.
# A re-run with the same script and all files present only compares the stamp (well under 1 s).
# Force a rebuild (e.g. to pick up a newer kernel): SD_GUEST_REBUILD=1. Pin a kernel: SD_GUEST_KERNEL_PKG=linux-image-...
# The golden image is only ever created, never rewritten (overlays may use it as their backing file).
# Usage: scripts/testbed/build_guest.sh
set -euo pipefail

SELF="$(readlink -f "${BASH_SOURCE[0]}")"
recipe="$(sha256sum "$SELF" | cut -d' ' -f1)"
GUEST_DIR="${SD_GUEST_DIR:-/var/lib/libvirt/images/shadowdesk/guest-${recipe:0:12}}"
if [ "${1:-}" = --print-dir ]; then echo "$GUEST_DIR"; exit 0; fi
META_PKG=linux-image-cloud-amd64
GOLDEN_SIZE=64M
# Modules the guest loads (with their dependencies, resolved from modules.dep) if the kernel has them.
WANT_MODULES=(virtio_pci virtio_blk virtio_net virtio_balloon virtio_console)

die() { printf '[shadowdesk testbed] ERROR: build_guest: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root"

mkdir -p "$GUEST_DIR"
chmod 0755 "$GUEST_DIR"
exec 9>"$GUEST_DIR/.lock"
flock 9   # parallel test sessions: one builds, the others wait and then find the cache

golden() {
  if [ ! -s "$GUEST_DIR/golden.qcow2" ]; then
    command -v qemu-img >/dev/null || die "qemu-img not found: run scripts/bootstrap.sh"
    out="$(qemu-img create -q -f qcow2 "$GUEST_DIR/golden.qcow2.tmp" "$GOLDEN_SIZE" 2>&1)" || die "qemu-img create: $out"
    chmod 0644 "$GUEST_DIR/golden.qcow2.tmp"
    mv -f "$GUEST_DIR/golden.qcow2.tmp" "$GUEST_DIR/golden.qcow2"
  fi
}

if [ "${SD_GUEST_REBUILD:-0}" != 1 ] && [ -s "$GUEST_DIR/vmlinuz" ] && [ -s "$GUEST_DIR/initrd.img" ] \
   && [ -f "$GUEST_DIR/stamp" ] && grep -qx "recipe=$recipe" "$GUEST_DIR/stamp"; then
  golden
  exit 0
fi

for b in apt-get apt-cache dpkg-deb cpio busybox; do command -v "$b" >/dev/null || die "$b not found: run scripts/bootstrap.sh"; done
# The guest needs the static busybox of busybox-static; a dynamic one would find no libc in the initramfs.
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" \
  || die "busybox-static is not installed: run scripts/bootstrap.sh"
file_bb=/bin/busybox

work="$(mktemp -d /tmp/shadowdesk-guest.XXXXXX)"
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
id _apt >/dev/null 2>&1 && chown _apt "$work"   # lets apt download sandboxed (no warning)

# 1. Which kernel package: the one the current bookworm cloud meta-package depends on.
pkg="${SD_GUEST_KERNEL_PKG:-}"
resolve_pkg() { apt-cache depends "$META_PKG" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[^ ]*-cloud-amd64\)$/\1/p' | head -n1; }
if [ -z "$pkg" ]; then
  pkg="$(resolve_pkg)"
  if [ -z "$pkg" ]; then
    out="$(apt-get update -qq 2>&1)" || die "apt-get update failed: $out"
    pkg="$(resolve_pkg)"
  fi
  [ -n "$pkg" ] || die "cannot resolve the kernel package behind $META_PKG (apt-cache depends $META_PKG)"
fi

# 2. Download and unpack (no install: the host kernel is untouched).
out="$(cd "$work" && apt-get download -q "$pkg" 2>&1)" || {
  out2="$(apt-get update -qq 2>&1)" || die "apt-get update failed: $out2"
  out="$(cd "$work" && apt-get download -q "$pkg" 2>&1)" || die "apt-get download $pkg failed: $out"
}
debs=("$work"/*.deb)
deb="${debs[0]}"
[ -f "$deb" ] || die "apt-get download $pkg produced no .deb: $out"
dpkg-deb -x "$deb" "$work/x"
kdirs=("$work"/x/lib/modules/*)
kver="$(basename "${kdirs[0]}")"
if [ "$kver" = '*' ] || [ ! -f "$work/x/boot/vmlinuz-$kver" ]; then die "no kernel/modules found in $deb"; fi
mods="$work/x/lib/modules/$kver"

# 3. modules.dep: the .deb has none (depmod runs in postinst); busybox depmod builds it without kmod.
[ -f "$mods/modules.dep" ] || busybox depmod -b "$work/x" "$kver" || die "busybox depmod failed"

# Load order: for each wanted module, its dependencies (modules.dep lists them so that the LAST one must be loaded
# first), then the module itself; de-duplicated.
declare -A seen=()
order=()
add() { [ -n "${seen[$1]:-}" ] || { seen[$1]=1; order+=("$1"); }; }
for m in "${WANT_MODULES[@]}"; do
  line="$(grep -E "(^|/)${m}\.ko(\.[a-z]+)?:" "$mods/modules.dep" | head -n1 || true)"
  if [ -z "$line" ]; then
    if grep -qE "/${m}\.ko" "$mods/modules.builtin" 2>/dev/null; then continue; fi   # built in: nothing to load
    printf '[shadowdesk testbed] warning: module %s not in kernel %s\n' "$m" "$kver" >&2
    continue
  fi
  self="${line%%:*}"
  read -r -a deps <<<"${line#*:}"
  for ((i=${#deps[@]}-1; i>=0; i--)); do add "${deps[$i]}"; done
  add "$self"
done

# 4. The initramfs tree.
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,mnt,"lib/modules/$kver"}
cp "$file_bb" "$root/bin/busybox"
: >"$root/etc/sd-modules"
for rel in "${order[@]}"; do
  src="$mods/$rel"
  case "$rel" in   # busybox insmod wants plain .ko
    *.ko.xz) mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"; xz -dc "$src" >"$root/lib/modules/$kver/${rel%.xz}"; rel="${rel%.xz}" ;;
    *.ko.zst) mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"; zstd -qdc "$src" >"$root/lib/modules/$kver/${rel%.zst}"; rel="${rel%.zst}" ;;
    *.ko.gz) mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"; gzip -dc "$src" >"$root/lib/modules/$kver/${rel%.gz}"; rel="${rel%.gz}" ;;
    *) mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"; cp "$src" "$root/lib/modules/$kver/$rel" ;;
  esac
  echo "$rel" >>"$root/etc/sd-modules"
done
echo "$kver" >"$root/etc/sd-kernel"

# 4b. Debian's real qemu-guest-agent (the one a desktop runs), with the shared libraries it links against, taken
# from the host (Debian 12 userland, same as the package's): tests run commands in the guest through it
# (guest-exec), and it answers guest-get-users like on a real desktop.
out="$(cd "$work" && apt-get download -q qemu-guest-agent 2>&1)" || die "apt-get download qemu-guest-agent failed: $out"
ga_debs=("$work"/qemu-guest-agent_*.deb)
[ -f "${ga_debs[0]}" ] || die "apt-get download qemu-guest-agent produced no .deb: $out"
dpkg-deb -x "${ga_debs[0]}" "$work/ga"
cp "$work/ga/usr/sbin/qemu-ga" "$root/usr/sbin/qemu-ga"
libs="$(ldd "$root/usr/sbin/qemu-ga")" || die "ldd qemu-ga failed: $libs"
missing_libs="$(printf '%s\n' "$libs" | sed -n 's/^[[:space:]]*\([^ ]*\) => not found.*/\1/p')"
[ -z "$missing_libs" ] || die "qemu-ga needs libraries the host lacks: $missing_libs (run scripts/bootstrap.sh)"
for lib in $(printf '%s\n' "$libs" | sed -n 's/.*=> \(\/[^ ]*\) .*/\1/p; s/^[[:space:]]*\(\/[^ ]*\) .*/\1/p'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
mkdir -p "$root/var/run" "$root/etc/qemu"

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
# ShadowDesk test guest init (busybox). Output goes to /dev/console = ttyS0 (kernel cmdline console=ttyS0).
# Protocol (one line each, on the serial console):
#   SHADOWDESK-READY kernel=<ver> cpus=<n> memtotal_kb=<kB> modules=<loaded>/<wanted>
#   SDSTAT seq=<n> cpus=<online> memtotal_kb=<MemTotal> uptime=<s>
# SDSTAT is printed when cpus or memtotal change, and as a heartbeat every sd_hb seconds (default 5; 0 = every tick).
# The loop runs every sd_tick seconds (default 0.5) and onlines offline (hot-added) CPUs: there is no udev.
# Kernel cmdline options: sd_tick=<s> sd_hb=<s>.
# qemu-ga is started on the virtio port named org.qemu.guest_agent.0 as soon as it appears (line: SDAGENT port=...).
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
kver="$(uname -r)"
want=0; ok=0
while read -r m; do
  want=$((want + 1))
  if insmod "/lib/modules/$kver/$m" 2>/dev/null; then ok=$((ok + 1)); else echo "SDWARN insmod $m failed"; fi
done </etc/sd-modules

tick=0.5; hb=5
read -r cmdline </proc/cmdline
for a in $cmdline; do
  case "$a" in
    sd_tick=*) tick="${a#sd_tick=}" ;;
    sd_hb=*) hb="${a#sd_hb=}" ;;
  esac
done

online_cpus() {
  for f in /sys/devices/system/cpu/cpu[0-9]*/online; do
    [ -e "$f" ] || continue
    read -r o <"$f"
    [ "$o" = 0 ] && echo 1 >"$f" 2>/dev/null
  done
  # count the ranges of /sys/devices/system/cpu/online, e.g. "0-2,4"
  read -r list </sys/devices/system/cpu/online
  n=0
  IFS=,
  for r in $list; do
    case "$r" in
      *-*) n=$((n + ${r#*-} - ${r%-*} + 1)) ;;
      *) n=$((n + 1)) ;;
    esac
  done
  unset IFS
  cpus=$n
}
meminfo() { read -r _ memtotal _ </proc/meminfo; }

agent_port=""
start_agent() {
  [ -z "$agent_port" ] || return 0
  for d in /sys/class/virtio-ports/*; do
    [ -r "$d/name" ] || continue
    read -r n <"$d/name"
    if [ "$n" = org.qemu.guest_agent.0 ] && [ -c "/dev/${d##*/}" ]; then
      agent_port="/dev/${d##*/}"
      /usr/sbin/qemu-ga -m virtio-serial -p "$agent_port" -t /var/run </dev/null >/dev/null 2>&1 &
      echo "SDAGENT port=$agent_port"
    fi
  done
}

start_agent
online_cpus; meminfo
echo "SHADOWDESK-READY kernel=$kver cpus=$cpus memtotal_kb=$memtotal modules=$ok/$want"
seq=0; last=""; since=0
# heartbeat every hb seconds = every hb/tick iterations (integer maths in centiseconds)
to_cs() {
  case "$1" in
    *.*) i="${1%%.*}"; f="${1#*.}0"; f="${f%"${f#??}"}"; f="${f#0}"; echo $(( ${i:-0} * 100 + ${f:-0} )) ;;
    *) echo $(( $1 * 100 )) ;;
  esac
}
tick_cs=$(to_cs "$tick"); hb_cs=$(to_cs "$hb"); [ "$tick_cs" -gt 0 ] || tick_cs=50
while :; do
  start_agent
  online_cpus; meminfo
  state="cpus=$cpus memtotal_kb=$memtotal"
  if [ "$state" != "$last" ] || [ "$since" -ge "$hb_cs" ]; then
    read -r up _ </proc/uptime
    echo "SDSTAT seq=$seq $state uptime=$up"
    seq=$((seq + 1)); last="$state"; since=0
  fi
  sleep "$tick"
  since=$((since + tick_cs))
done
INIT
chmod 0755 "$root/init"

# 5. Write the results atomically; stamp last.
# Reproducible: fixed mtimes, sorted names, no inode/dev numbers (same inputs -> byte-identical initrd.img).
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --reproducible --quiet) \
  >"$GUEST_DIR/initrd.img.tmp"
cp "$work/x/boot/vmlinuz-$kver" "$GUEST_DIR/vmlinuz.tmp"
chmod 0644 "$GUEST_DIR/initrd.img.tmp" "$GUEST_DIR/vmlinuz.tmp"
mv -f "$GUEST_DIR/vmlinuz.tmp" "$GUEST_DIR/vmlinuz"
mv -f "$GUEST_DIR/initrd.img.tmp" "$GUEST_DIR/initrd.img"
golden
printf 'kernel=%s\npackage=%s\nmodules=%s\nrecipe=%s\n' "$kver" "$pkg" "$(tr '\n' ' ' <"$root/etc/sd-modules" | sed 's/ $//')" "$recipe" \
  >"$GUEST_DIR/stamp"
exit 0
