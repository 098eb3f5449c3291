#!/usr/bin/env bash
# Installs the Debian packages that tests talk to (real peers: ipmi_sim,
# dnsmasq, QEMU, mosquitto, ...). Each feature lists its own packages in
# scripts/test-deps.d/<feature>.txt, one name a line, '#' comments allowed.
# Runs as root with apt-get; elsewhere it only reports what is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
mapfile -t wanted < <(cat "$here"/test-deps.d/*.txt 2>/dev/null | sed 's/#.*//' | tr -s ' \t' '\n' | grep -v '^$' | sort -u)
[ ${#wanted[@]} -gt 0 ] || exit 0
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -gt 0 ] || exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "test-deps: missing Debian packages (install as root): ${missing[*]}" >&2
  exit 0
fi
echo "test-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
