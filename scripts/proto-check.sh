#!/usr/bin/env bash
# Fails when proto/gen/ is not what `npm run proto` makes from proto/osp/.
set -euo pipefail
cd "$(dirname "$0")/.."
npx buf lint
npx buf generate
npx buf build --as-file-descriptor-set -o proto/gen/osp.binpb
if ! git diff --quiet -- proto/gen || [ -n "$(git ls-files --others --exclude-standard proto/gen)" ]; then
  echo "proto/gen is stale: run 'npm run proto' and commit the result" >&2
  git status --short proto/gen >&2
  exit 1
fi
echo "proto/gen is current"
