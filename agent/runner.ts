import type { Logger } from '../common/logging.js';
import { silentLogger } from '../common/logging.js';
import type { Engine, RunResult } from './engine.js';

export interface RunnerDeps {
  engine: Pick<Engine, 'run'>;
  /** Called with every run's result: the transport acknowledges it (AckRevision). */
  onResult?: (r: RunResult) => void | Promise<void>;
  logger?: Logger;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/**
 * The long-running side: the transport calls `notify()` when a revision
 * arrives (after `CachedServerSource.update`); runs never overlap, a
 * notification during a run causes exactly one more run, and a failed run is
 * retried with exponential backoff until it succeeds or new config arrives.
 */
export class AgentRunner {
  private running = false;
  private pending = false;
  private stopped = true;
  private timer: NodeJS.Timeout | undefined;
  private failures = 0;
  private readonly log: Logger;
  private idle: Promise<void> = Promise.resolve();

  constructor(private readonly deps: RunnerDeps) {
    this.log = deps.logger ?? silentLogger();
  }

  start(): void {
    this.stopped = false;
    this.notify();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.idle;
  }

  /** New config (or a retry) is due. */
  notify(): void {
    if (this.stopped) return;
    if (this.timer) {
      // Fresh config supersedes a scheduled retry.
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.running) {
      this.pending = true;
      return;
    }
    this.idle = this.loop();
  }

  /** Delay before retry number `failures` (1-based): min·2^(n-1), capped. */
  backoffMs(failures: number): number {
    const min = this.deps.minBackoffMs ?? 1_000;
    const max = this.deps.maxBackoffMs ?? 300_000;
    return Math.min(max, min * 2 ** Math.min(30, Math.max(0, failures - 1)));
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      do {
        this.pending = false;
        let result: RunResult | undefined;
        try {
          result = await this.deps.engine.run();
        } catch (e) {
          this.log.error({ err: e }, 'agent run could not start');
        }
        if (result) await this.report(result);
        if (result?.status === 'succeeded') this.failures = 0;
        else this.failures++;
      } while (this.pending && !this.stopped);
    } finally {
      this.running = false;
    }
    if (this.failures > 0 && !this.stopped) {
      const delayMs = this.backoffMs(this.failures);
      this.log.warn({ failures: this.failures, delayMs }, 'agent run failed; retrying');
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.notify();
      }, delayMs);
    }
  }

  private async report(r: RunResult): Promise<void> {
    try {
      await this.deps.onResult?.(r);
    } catch (e) {
      this.log.warn({ err: e }, 'could not report run result');
    }
  }
}
