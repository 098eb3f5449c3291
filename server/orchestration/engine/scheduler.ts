/**
 * Runs a dependency graph: each node starts as soon as every node it depends
 * on has succeeded, at most `concurrency` at a time. After the first failure,
 * or once `signal` aborts, nothing new starts; the running ones are awaited.
 * Nodes whose dependencies failed never run. Resolves with the first error
 * (undefined when every node ran and succeeded).
 */
export async function runGraph(
  deps: ReadonlyMap<string, ReadonlySet<string>>,
  concurrency: number,
  signal: AbortSignal,
  run: (name: string) => Promise<void>,
): Promise<unknown> {
  const waiting = new Map<string, Set<string>>();
  for (const [n, d] of deps) waiting.set(n, new Set([...d].filter((x) => deps.has(x))));
  const dependents = new Map<string, string[]>();
  for (const [n, d] of waiting) for (const x of d) dependents.set(x, [...(dependents.get(x) ?? []), n]);
  const ready = [...waiting.keys()].filter((n) => waiting.get(n)!.size === 0).sort();
  let running = 0;
  let firstError: unknown;
  let failed = false;

  return new Promise((resolveAll) => {
    const pump = (): void => {
      while (!failed && !signal.aborted && running < concurrency && ready.length > 0) {
        const name = ready.shift()!;
        waiting.delete(name);
        running++;
        run(name).then(
          () => {
            for (const d of dependents.get(name) ?? []) {
              const w = waiting.get(d);
              if (!w) continue;
              w.delete(name);
              if (w.size === 0) ready.push(d);
            }
          },
          (e: unknown) => { if (!failed) { failed = true; firstError = e; } },
        ).finally(() => { running--; pump(); });
      }
      if (running === 0) resolveAll(failed ? firstError : signal.aborted ? signal.reason : undefined);
    };
    pump();
  });
}
