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
)

missing_pkgs=()
missing_cmds=()
for cmd in "${!NEED[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/sbin/$cmd" ]; then
    missing_cmds+=("$cmd")
    pkg=${NEED[$cmd]}
    [[ " ${missing_pkgs[*]-} " == *" $pkg "* ]] || missing_pkgs+=("$pkg")
  fi
done

if [ ${#missing_pkgs[@]} -eq 0 ]; then
  exit 0
fi

if [ "${1-}" = "--check" ]; then
  echo "weft: missing commands: ${missing_cmds[*]} (Debian packages: ${missing_pkgs[*]}); run: sudo scripts/prereqs.sh" >&2
  exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "weft: need root to install Debian packages: ${missing_pkgs[*]} (run with sudo)" >&2
  exit 1
fi

echo "weft: installing Debian packages: ${missing_pkgs[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing_pkgs[@]}" >/dev/null
echo "weft: prerequisites installed" >&2
