import type { JsonCache } from './cache.js';
import type { ServerConfig, ServerSource } from './types.js';

const NAME = 'server';

/**
 * The server source backed by the disk cache: the transport calls
 * `update()` for every revision it receives; `apply --once` and a restarted
 * agent read the last one received, so the agent keeps working while ospd is away.
 */
export class CachedServerSource implements ServerSource {
  private current: ServerConfig | undefined;

  constructor(private readonly cache: JsonCache) {}

  async load(): Promise<void> {
    this.current = await this.cache.read<ServerConfig>(NAME);
  }

  latest(): ServerConfig | undefined {
    return this.current;
  }

  async update(config: ServerConfig): Promise<void> {
    await this.cache.write(NAME, config);
    this.current = config;
  }
}
