import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createFileRegistry, fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { REPO } from '../harness/ospd.js';

/** Messages that carry a node's driver_info or its history. */
export const NODE_MESSAGES = ['osp.v1.Node', 'osp.v1.NodeEvent'];

function carries(m: DescMessage, targets: string[], seen = new Set<string>()): boolean {
  if (targets.includes(m.typeName)) return true;
  if (seen.has(m.typeName)) return false;
  seen.add(m.typeName);
  return m.fields.some((f) => {
    const nested = f.fieldKind === 'message' ? f.message
      : f.fieldKind === 'list' && f.listKind === 'message' ? f.message
        : f.fieldKind === 'map' && f.mapKind === 'message' ? f.message : undefined;
    return nested !== undefined && carries(nested, targets, seen);
  });
}

/**
 * Every RPC of the wire contract (proto/gen/osp.binpb, what buf compiled and
 * reflection serves) as its gRPC path, and whether its answer holds a node
 * message at any depth.
 */
export function contractRpcs(): { path: string; answersWithNode: boolean }[] {
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(path.join(REPO, 'proto', 'gen', 'osp.binpb')));
  const out: { path: string; answersWithNode: boolean }[] = [];
  for (const t of createFileRegistry(set)) {
    if (t.kind !== 'service') continue;
    for (const m of t.methods) out.push({ path: `/${t.typeName}/${m.name}`, answersWithNode: carries(m.output, NODE_MESSAGES) });
  }
  return out;
}
