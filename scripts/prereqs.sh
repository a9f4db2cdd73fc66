#!/usr/bin/env bash
# Installs the Debian packages weft's tests, demo and benchmark need, only when one is missing
# (idempotent: nothing happens when all are there). `--check` only reports.
#   scripts/prereqs.sh          install what is missing (needs root)
#   scripts/prereqs.sh --check  exit 1 and name what is missing
set -euo pipefail

# command -> Debian package
declare -A NEED=(
  [ip]=iproute2
  [bridge]=iproute2
  [ping]=iputils-ping
  [iperf3]=iperf3
  [nft]=nftables
  [tcpdump]=tcpdump
  [ethtool]=ethtool
  [ps]=procps
  [nsenter]=util-linux
  [flock]=util-linux
  [iptables]=iptables # the portmap CNI plugin runs it
  [curl]=curl # the metrics and health endpoints are scraped with it
  [systemd-analyze]=systemd # test/integration/install.test.ts verifies deploy/systemd/weft.service
  [dot]=graphviz # weft graph --format svg, its tests and the demo's picture of the mesh
)

# Packages checked by name rather than by a command on PATH: real container runtimes for the
# CNI tests (containerd + runc driven over CRI; podman with its CNI backend; the reference CNI
# plugins in /usr/lib/cni, incl. portmap and bandwidth) and what the offline images are built
# from (umoci packs catatonit and a static busybox).
NEED_PKGS=(
  containerd
  runc
  podman
  containernetworking-plugins
  umoci
  catatonit
)

# A static busybox for the lab's workload image, unpacked from Debian's busybox-static package
# into this directory rather than installed: installing busybox-static would replace a
# dynamic busybox the machine may rely on.
BUSYBOX_DIR=/var/cache/weft/busybox-static
need_busybox=0
[ -x "$BUSYBOX_DIR/bin/busybox" ] || need_busybox=1

missing_pkgs=()
missing_cmds=()
for cmd in "${!NEED[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/sbin/$cmd" ]; then
    missing_cmds+=("$cmd")
    pkg=${NEED[$cmd]}
    [[ " ${missing_pkgs[*]-} " == *" $pkg "* ]] || missing_pkgs+=("$pkg")
  fi
done
for pkg in "${NEED_PKGS[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
    missing_cmds+=("($pkg)")
    [[ " ${missing_pkgs[*]-} " == *" $pkg "* ]] || missing_pkgs+=("$pkg")
  fi
done

if [ ${#missing_pkgs[@]} -eq 0 ] && [ $need_busybox -eq 0 ]; then
  exit 0
fi
[ $need_busybox -eq 0 ] || missing_cmds+=("($BUSYBOX_DIR/bin/busybox)")

if [ "${1-}" = "--check" ]; then
  echo "weft: missing commands: ${missing_cmds[*]} (Debian packages: ${missing_pkgs[*]}); run: sudo scripts/prereqs.sh" >&2
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "weft: need root to install Debian packages: ${missing_pkgs[*]} (run with sudo)" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
if [ ${#missing_pkgs[@]} -gt 0 ]; then
  echo "weft: installing Debian packages: ${missing_pkgs[*]}" >&2
  apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
fi
if [ $need_busybox -eq 1 ]; then
  echo "weft: unpacking busybox-static into $BUSYBOX_DIR" >&2
  tmp=$(mktemp -d) && chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -qq busybox-static >/dev/null && mkdir -p "$BUSYBOX_DIR.new" && dpkg-deb -x busybox-static_*.deb "$BUSYBOX_DIR.new")
  rm -rf "$BUSYBOX_DIR" && mv "$BUSYBOX_DIR.new" "$BUSYBOX_DIR"
  rm -rf "$tmp"
fi
echo "weft: prerequisites installed" >&2
