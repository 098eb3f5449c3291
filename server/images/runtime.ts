import type { Logger } from '../../common/logging.js';
import type { Service } from '../lifecycle.js';
import type { Database } from '../store/db.js';
import type { HttpBootServer } from '../pxe/http/server.js';
import { DeployTokens } from './deploy-tokens.js';
import { ImageStore } from './image-store.js';
import { imageRoute, imageUrlPath } from './http-route.js';

/**
 * Images in ospd: the store, the deploy tokens and the download route on the
 * HTTP boot listener. Started after the HTTP listener (the route is added to
 * it); the deploy flow reaches the store and the tokens through here.
 */
export class ImageRuntime implements Service {
  readonly store: ImageStore;
  readonly tokens: DeployTokens;

  constructor(private readonly o: { db: Database; dataDir: string; maxBytes: number; http: () => HttpBootServer | null | undefined; log: Logger }) {
    this.store = new ImageStore(o.db, { dataDir: o.dataDir, maxBytes: o.maxBytes, log: o.log });
    this.tokens = new DeployTokens(o.db);
  }

  async start(): Promise<void> {
    await this.store.start();
    await this.tokens.prune();
    const http = this.o.http();
    if (!http) return;
    await this.store.onAdded((name) => http.addRoute(imageUrlPath(name), imageRoute(this.store, this.tokens, name)));
  }

  async stop(): Promise<void> {
    await this.store.stop();
  }
}
