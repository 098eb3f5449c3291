#!/bin/sh
# Step 2 on the Controller: the registry is a directory that records each
# Compute; its endpoint names this Controller's address.
set -eu
root="${OSP_ROOT:-/}"
dir="${root%/}/var/lib/osp-registry"
mkdir -p "$dir/computes"
addr=$(echo $controller_node_ips | cut -d' ' -f1)
endpoint="osp-registry://$addr/var/lib/osp-registry"
echo "$endpoint" > "$dir/endpoint"
printf '%s' "$endpoint" > "$heat_outputs_path.endpoint"
echo "registry: serving $endpoint"
