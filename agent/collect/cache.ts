import { copyFile, readFile } from 'node:fs/promises';
import path from 'node:path';
import { atomicWrite } from '../fs/atomic-write.js';

/**
 * JSON documents on disk, each write keeping the previous copy as `<name>.last`
 * (os-collect-config's convention), so the agent survives restarts and can
 * show what changed.
 */
export class JsonCache {
  constructor(private readonly dir: string) {}

  pathOf(name: string): string {
    return path.join(this.dir, `${name}.json`);
  }

  async read<T>(name: string): Promise<T | undefined> {
    return readJson<T>(this.pathOf(name));
  }

  async readLast<T>(name: string): Promise<T | undefined> {
    return readJson<T>(`${this.pathOf(name)}.last`);
  }

  async write(name: string, value: unknown): Promise<void> {
    const file = this.pathOf(name);
    try {
      await copyFile(file, `${file}.last`);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    await atomicWrite(file, JSON.stringify(value, null, 2) + '\n', { mode: 0o600 });
  }
}

export async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return JSON.parse(text) as T;
}
