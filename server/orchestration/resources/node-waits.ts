/**
 * Wake-ups for code that waits on a node: every committed provision state
 * change and every end of a deploy's boot watch wakes the waiters of that
 * node, which then read the node once. Nobody reads the store in a loop.
 */
export interface NodeWaitSources {
  states: { observe(fn: (n: { uuid: string }) => void): () => void };
  bootWatch: { onEnded(fn: (uuid: string) => void): () => void };
}

export interface NodeWatch {
  /** Resolves at the next wake-up, at once if one came since the last call; rejects when `signal` aborts. */
  next(signal: AbortSignal): Promise<void>;
  close(): void;
}

export class NodeWaits {
  private readonly watches = new Map<string, Set<() => void>>();

  constructor(src: NodeWaitSources) {
    // For ospd's whole life: the plug-ins live as long as the engine.
    src.states.observe((n) => this.wake(n.uuid));
    src.bootWatch.onEnded((uuid) => this.wake(uuid));
  }

  private wake(uuid: string): void {
    for (const fn of this.watches.get(uuid) ?? []) fn();
  }

  /** Start watching before reading the node, so a change between the read and the wait is not missed. */
  watch(uuid: string): NodeWatch {
    let woken = false;
    let resolve: (() => void) | undefined;
    const onWake = () => {
      woken = true;
      resolve?.();
    };
    const set = this.watches.get(uuid) ?? new Set();
    set.add(onWake);
    this.watches.set(uuid, set);
    return {
      next: (signal) => new Promise<void>((res, rej) => {
        if (signal.aborted) return rej(signal.reason);
        const done = (fn: () => void) => {
          resolve = undefined;
          woken = false;
          signal.removeEventListener('abort', onAbort);
          fn();
        };
        const onAbort = () => done(() => rej(signal.reason));
        if (woken) return done(res);
        resolve = () => done(res);
        signal.addEventListener('abort', onAbort, { once: true });
      }),
      close: () => {
        set.delete(onWake);
        if (set.size === 0 && this.watches.get(uuid) === set) this.watches.delete(uuid);
      },
    };
  }
}
