#!/bin/sh
# Step 3 on a Compute: registers with the Controller whose address the stack
# gives ($controller_node_ips). The node finds its own name and address in
# the hosts block (step 1) by its node uuid ($deploy_server_id).
set -eu
root="${OSP_ROOT:-/}"
controller=$(echo $controller_node_ips | cut -d' ' -f1)
[ -n "$controller" ] || { echo "compute registration: the stack gave no Controller address" >&2; exit 1; }
self=$(grep " # $deploy_server_id\$" "${root%/}/etc/hosts" | head -n 1 || true)
[ -n "$self" ] || { echo "compute registration: node $deploy_server_id is not in the hosts block" >&2; exit 1; }
addr=$(echo "$self" | cut -d' ' -f1)
name=$(echo "$self" | cut -d' ' -f2)
mkdir -p "${root%/}/etc/osp"
echo "controller = $controller" > "${root%/}/etc/osp/registry.conf"
printf '%s %s %s' "$name" "$addr" "$controller" > "$heat_outputs_path.registration"
echo "compute registration: $name ($addr) registered with $controller"
