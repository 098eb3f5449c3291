import { OspError } from '../common/errors.js';
import type { Element, ElementLibrary } from './elements.js';

export interface Resolution {
  /** Dependencies before the elements that need them; stable for a given request. */
  ordered: Element[];
  /** Virtual name -> element providing it (element-provides). */
  provided: Map<string, string>;
}

/**
 * Transitive closure of the requested elements over element-deps, as diskimage-builder
 * resolves it: a dependency is satisfied by an element of that name or by one that
 * lists the name in element-provides. Missing names, cycles and two providers of one
 * name are errors that name the elements involved.
 */
export function resolveElements(requested: string[], library: ElementLibrary): Resolution {
  if (requested.length === 0) {
    throw new OspError('INVALID_ARGUMENT', 'elements: no element given, expected at least one element name', { field: 'elements' });
  }
  const byName = new Map<string, Element>();
  const wanted: Array<{ name: string; by?: string }> = requested.map((name) => ({ name }));
  const unresolved: Array<{ name: string; by?: string }> = [];
  while (wanted.length > 0) {
    const { name, by } = wanted.shift()!;
    if (byName.has(name)) continue;
    if (!library.has(name)) {
      unresolved.push({ name, by });
      continue;
    }
    const el = library.get(name, by);
    byName.set(name, el);
    for (const dep of el.deps) wanted.push({ name: dep, by: name });
  }

  const provided = new Map<string, string>();
  for (const el of byName.values()) {
    for (const p of el.provides) {
      const other = provided.get(p);
      if (other !== undefined) {
        throw new OspError('IMAGE_ELEMENT_CONFLICT', `elements '${other}' and '${el.name}' both provide '${p}'; keep only one of them`, { provides: p, elements: [other, el.name] });
      }
      if (byName.has(p)) {
        throw new OspError('IMAGE_ELEMENT_CONFLICT', `element '${el.name}' provides '${p}', which is also an element in this build; keep only one of them`, { provides: p, elements: [p, el.name] });
      }
      provided.set(p, el.name);
    }
  }
  for (const u of unresolved) {
    if (provided.has(u.name)) continue;
    // Re-raise through the library so the message carries the search path.
    library.get(u.name, u.by);
  }

  const ordered: Element[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, stack: string[]): void => {
    const real = byName.has(name) ? name : provided.get(name)!;
    const s = state.get(real);
    if (s === 'done') return;
    if (s === 'visiting') {
      const from = stack.indexOf(real);
      const cycle = [...stack.slice(from), real];
      throw new OspError('IMAGE_ELEMENT_CYCLE', `element dependency cycle: ${cycle.join(' -> ')}`, { cycle });
    }
    state.set(real, 'visiting');
    const el = byName.get(real)!;
    for (const dep of el.deps) visit(dep, [...stack, real]);
    state.set(real, 'done');
    ordered.push(el);
  };
  for (const name of requested) visit(name, []);
  return { ordered, provided };
}
