#!/bin/sh
# Replaces the overcloud block of /etc/hosts with $all_hosts ("ADDR NAME # NODE-UUID"
# lines), keeping every other line as the operator left it.
set -eu
root="${OSP_ROOT:-/}"
hosts="${root%/}/etc/hosts"
begin='# BEGIN osp overcloud hosts'
end='# END osp overcloud hosts'
mkdir -p "$(dirname "$hosts")"
touch "$hosts"
tmp="$hosts.osp-new"
sed "/^$begin\$/,/^$end\$/d" "$hosts" > "$tmp"
{
  echo "$begin"
  printf '%s\n' "$all_hosts" | grep -v '^[[:space:]]*$' || true
  echo "$end"
} >> "$tmp"
mv "$tmp" "$hosts"
echo "hosts: $(printf '%s\n' "$all_hosts" | grep -c . || true) overcloud entries in $hosts"
