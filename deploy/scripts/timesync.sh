#!/bin/sh
# Renders the time servers (config_settings timesync::servers, from the
# NtpServers parameter) into /etc/osp/timesync.conf, one `server` line each.
set -eu
root="${OSP_ROOT:-/}"
conf="${root%/}/etc/osp/timesync.conf"
mkdir -p "$(dirname "$conf")"
# $ntp_servers is the JSON list the stack passes, e.g. ["a","b"].
servers=$(printf '%s' "$ntp_servers" | tr -d '[]" ' | tr ',' ' ')
[ -n "$servers" ] || { echo "timesync: NtpServers is empty" >&2; exit 1; }
{
  echo "# written by the osp timesync service; changes are overwritten"
  for s in $servers; do echo "server $s iburst maxpoll $ntp_maxpoll"; done
} > "$conf.new"
mv "$conf.new" "$conf"
echo "timesync: $servers"
