/**
 * What every part of ospd is to the composition root (server/ospd.ts): it is
 * started in the order of the root's list and stopped in reverse, so a part
 * may rely on everything listed before it for its whole life.
 */
export interface Service {
  start(): Promise<void>;
  stop(): Promise<void>;
}
