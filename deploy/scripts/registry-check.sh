#!/bin/sh
# Step 5 on the Controller: records every Compute's registration (from the
# stack: a JSON mapping of "NAME ADDR CONTROLLER" lines) and checks that
# each expected Compute registered with this Controller.
set -eu
root="${OSP_ROOT:-/}"
dir="${root%/}/var/lib/osp-registry"
self=$(echo $controller_node_ips | cut -d' ' -f1)
[ -d "$dir/computes" ] || { echo "registry check: $dir is missing (did step 2 run?)" >&2; exit 1; }
rm -f "$dir/computes/"*
{ printf '%s\n' "$compute_registration"; } | tr -d '{}' | tr ',' '\n' | sed -n 's/^"[^"]*":"\(.*\)"$/\1/p' > "$dir/incoming"
bad=0
while read -r name addr controller; do
  [ -n "$name" ] || continue
  if [ "$controller" != "$self" ]; then
    echo "registry check: $name registered with $controller, not this Controller ($self)" >&2
    bad=1
  fi
  echo "$addr" > "$dir/computes/$name"
done < "$dir/incoming"
for n in $compute_node_names; do
  [ -f "$dir/computes/$n" ] || { echo "registry check: Compute $n did not register" >&2; bad=1; }
done
[ "$bad" = 0 ] || exit 1
registered=$(ls "$dir/computes" | sort | tr '\n' ' ' | sed 's/ $//')
printf '%s' "$registered" > "$heat_outputs_path.registered_computes"
echo "registry check: registered Computes: $registered"
