import { stackStore, type StackRow } from '../../store/stacks.js';
import type { LoadedStack } from '../hot/stack.js';
import type { StackPlan } from './contract.js';
import { jsonClone, NotReady, sameJson, type StackState } from './state.js';

/**
 * What an update would do, decided as the update decides it but without
 * touching anything. A resource whose properties read a resource that will
 * change can't be compared before that change happens: it is counted as updated.
 */
export async function planOf(state: StackState, row: StackRow, loaded: LoadedStack): Promise<StackPlan> {
  const rows = new Map((await stackStore.resources(state.db, row.id)).map((r) => [r.name, r]));
  const plan: StackPlan = { create: [], update: [], replace: [], delete: [], unchanged: [] };
  const changing = new Set<string>();
  for (const level of loaded.createLevels) {
    for (const name of level) {
      const lr = loaded.resources.get(name)!;
      const cur = rows.get(name);
      const verdict = await (async (): Promise<keyof StackPlan> => {
        if (!cur || cur.data === null) return 'create';
        if (cur.type !== lr.type || cur.status === 'CREATE_FAILED' || cur.status.startsWith('DELETE_')) return 'replace';
        if ([...lr.dependsOn].some((d) => changing.has(d))) return 'update';
        const live = await state.live(state.db, row, lr.dependsOn);
        let props: Record<string, unknown>;
        try {
          props = jsonClone((state.resolveIn(loaded, live, lr.def.properties) ?? {}) as Record<string, unknown>);
        } catch (e) {
          if (e instanceof NotReady) return 'update';
          throw e;
        }
        const old = state.openProperties(cur);
        if (sameJson(old, props)) return cur.status.endsWith('_COMPLETE') ? 'unchanged' : 'update';
        const plugin = state.pluginFor(lr.type);
        const changed = Object.keys({ ...old, ...props }).filter((k) => !sameJson(old[k], props[k]));
        return plugin.replaceOn === '*' || changed.some((k) => (plugin.replaceOn as readonly string[]).includes(k)) ? 'replace' : 'update';
      })();
      plan[verdict].push(name);
      if (verdict !== 'unchanged') changing.add(name);
    }
  }
  for (const name of rows.keys()) if (!loaded.resources.has(name)) plan.delete.push(name);
  for (const k of Object.keys(plan) as (keyof StackPlan)[]) plan[k].sort();
  return plan;
}
