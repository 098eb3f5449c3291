#!/bin/sh
# Renders SysctlSettings (a JSON mapping, e.g. {"vm.swappiness":10}) into
# /etc/sysctl.d/90-osp.conf. Applying them is left to boot (systemd-sysctl):
# a simulated node must not change the host's kernel.
set -eu
root="${OSP_ROOT:-/}"
conf="${root%/}/etc/sysctl.d/90-osp.conf"
mkdir -p "$(dirname "$conf")"
{
  echo "# written by the osp sysctl service; changes are overwritten"
  printf '%s' "$sysctl_settings" | tr -d '{}" ' | tr ',' '\n' | sed -n 's/^\([A-Za-z0-9_.-]*\):\(.*\)$/\1 = \2/p'
} > "$conf.new"
mv "$conf.new" "$conf"
echo "sysctl: $(grep -c ' = ' "$conf" || true) settings"
