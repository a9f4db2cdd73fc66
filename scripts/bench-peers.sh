#!/usr/bin/env bash
# The optional peer of the sleeve benchmark (bench/suites/wireguard-go.ts): wireguard-go
# 0.0.20231211 from Debian trixie (TUN offloads, UDP GSO/GRO), which bookworm does not have, and
# `wg` from bookworm's wireguard-tools. Bench-only, so not in scripts/prereqs.sh: tests, the demo
# and the other suites do not need it, and a machine without the trixie archive still runs them.
#
# The .deb is fetched with a private apt list (the machine's own mirror, suite trixie) into a
# temporary directory, so the machine's apt sources and lists stay untouched; it is unpacked, not
# installed, into .cache/wireguard-go/ under the project (ignored by git). Idempotent: nothing is
# fetched when the binary is there.
#   scripts/bench-peers.sh          install what is missing (needs root); prints the binary's path
#   scripts/bench-peers.sh --check  exit 1 and say what is missing
# Prints the path of the wireguard-go binary as its last line; the deb's version is in
# .cache/wireguard-go/VERSION.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache="$root/.cache/wireguard-go"
bin="$cache/root/usr/bin/wireguard-go"
missing=()
command -v wg >/dev/null 2>&1 || missing+=("wg (Debian package wireguard-tools)")
[ -x "$bin" ] && [ -s "$cache/VERSION" ] || missing+=("wireguard-go from Debian trixie in $cache")

if [ ${#missing[@]} -eq 0 ]; then
  echo "$bin"
  exit 0
fi
if [ "${1-}" = "--check" ]; then
  echo "weft bench: missing ${missing[*]}; run: sudo scripts/bench-peers.sh" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "weft bench: need root to fetch ${missing[*]}" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if ! command -v wg >/dev/null 2>&1; then
  echo "weft bench: installing wireguard-tools (bookworm)" >&2
  # (a machine whose package lists were never fetched: fetch them once, then try again)
  apt-get install -y -qq --no-install-recommends wireguard-tools >/dev/null 2>&1 ||
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends wireguard-tools >/dev/null; }
fi

if ! [ -x "$bin" ] || ! [ -s "$cache/VERSION" ]; then
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri=$(awk '/^deb / && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  if [ -z "$uri" ]; then
    echo "weft bench: no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list" >&2
    exit 1
  fi
  tmp=$(mktemp -d) && chmod 755 "$tmp"
  trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
  echo "deb $uri trixie main" >"$tmp/sources.list"
  O=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache::Archives=$tmp/archives" -o APT::Sandbox::User=root)
  echo "weft bench: fetching wireguard-go from Debian trixie ($uri) into $cache" >&2
  apt-get "${O[@]}" update -qq
  (cd "$tmp" && apt-get "${O[@]}" download -qq wireguard-go >/dev/null)
  deb=$(ls "$tmp"/wireguard-go_*.deb)
  rm -rf "$cache.new" && mkdir -p "$cache.new"
  dpkg-deb -x "$deb" "$cache.new/root"
  dpkg-deb -f "$deb" Version >"$cache.new/VERSION"
  rm -rf "$cache" && mv "$cache.new" "$cache"
fi
echo "$bin"
