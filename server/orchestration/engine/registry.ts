import type { ResourcePlugin } from './contract.js';

/**
 * The resource types the engine implements, keyed by type name. A template
 * used as a type (a nested stack) has no entry: the engine's own template
 * plug-in serves every such type.
 */
export class PluginRegistry {
  private readonly byType = new Map<string, ResourcePlugin>();

  constructor(plugins: readonly ResourcePlugin[]) {
    for (const p of plugins) {
      if (this.byType.has(p.type)) throw new Error(`resource type ${p.type} registered twice`);
      this.byType.set(p.type, p);
    }
  }

  get(type: string): ResourcePlugin | undefined {
    return this.byType.get(type);
  }

  /** For validateStack's knownTypes. */
  knownTypes(): Set<string> {
    return new Set(this.byType.keys());
  }

  /** For validateStack's attributesOf: undefined when the type declares its attributes per template ('any'). */
  attributesOf = (type: string): readonly string[] | undefined => {
    const a = this.byType.get(type)?.attributes;
    return a === 'any' ? undefined : a;
  };
}
