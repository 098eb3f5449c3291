/**
 * The resource dependency graph: an edge a -> b when a needs b first
 * (get_resource, get_attr or depends_on). Creation goes in levels, each level
 * needing only earlier ones, so a level's resources can be created in
 * parallel; deletion walks the levels backwards.
 */
export type Dependencies = Map<string, ReadonlySet<string>>;

/** A cycle as the names along it, first repeated last (`a -> b -> a` is [a, b, a]); undefined when there is none. */
export function findCycle(deps: Dependencies): string[] | undefined {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | undefined => {
    const s = state.get(n);
    if (s === 'done') return undefined;
    if (s === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const d of [...(deps.get(n) ?? [])].sort()) {
      if (!deps.has(d)) continue;
      const c = visit(d);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of [...deps.keys()].sort()) {
    const c = visit(n);
    if (c) return c;
  }
  return undefined;
}

export const formatCycle = (cycle: string[]): string => cycle.join(' -> ');

/**
 * Creation order in levels (names sorted inside a level, so the order is
 * stable). Dependencies on names outside the graph are ignored. Throws on a
 * cycle: call findCycle first to report it.
 */
export function creationLevels(deps: Dependencies): string[][] {
  const level = new Map<string, number>();
  const placing = new Set<string>();
  const place = (n: string): number => {
    const known = level.get(n);
    if (known !== undefined) return known;
    if (placing.has(n)) throw new Error(`dependency cycle through ${n}`);
    placing.add(n);
    let l = 0;
    for (const d of deps.get(n) ?? []) if (deps.has(d)) l = Math.max(l, place(d) + 1);
    placing.delete(n);
    level.set(n, l);
    return l;
  };
  for (const n of deps.keys()) place(n);
  const out: string[][] = [];
  for (const [n, l] of level) (out[l] ??= []).push(n);
  return out.map((l) => l.sort());
}

/**
 * Deletion order: a resource goes only after everything that needs it. Not
 * simply the creation levels reversed: a leaf nobody needs can go first.
 */
export function deletionLevels(deps: Dependencies): string[][] {
  const reverse = new Map<string, Set<string>>();
  for (const n of deps.keys()) reverse.set(n, new Set());
  for (const [n, ds] of deps) for (const d of ds) reverse.get(d)?.add(n);
  return creationLevels(reverse);
}
