import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { OspError } from '../../common/errors.js';
import { isPlainObject } from './merge.js';
import type { JsonObject } from './types.js';

/**
 * Reads every `*.json` file of the local-data directory, in lexical order
 * (later files win when merged). Like os-collect-config's `local` collector,
 * a directory anyone else could write to is refused: it would let any local
 * user inject config that hooks then run as root.
 */
export async function readLocalData(dir: string): Promise<JsonObject[]> {
  let st;
  try {
    st = await stat(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const uid = process.getuid?.() ?? 0;
  if (!st.isDirectory()) {
    throw new OspError('AGENT_LOCAL_DATA_INSECURE', `local-data path ${dir} is not a directory`, { path: dir });
  }
  if ((st.mode & 0o002) !== 0) {
    throw new OspError(
      'AGENT_LOCAL_DATA_INSECURE',
      `local-data directory ${dir} is world-writable (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}); ` +
        `expected no write bit for others (e.g. chmod o-w ${dir})`,
      { path: dir, mode: st.mode & 0o7777 },
    );
  }
  if (st.uid !== uid) {
    throw new OspError(
      'AGENT_LOCAL_DATA_INSECURE',
      `local-data directory ${dir} is owned by uid ${st.uid}; expected the agent's own uid ${uid}`,
      { path: dir, uid: st.uid, expectedUid: uid },
    );
  }
  const names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  const docs: JsonObject[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const text = await readFile(file, 'utf8');
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (e) {
      throw new OspError('AGENT_LOCAL_DATA_INVALID', `local-data file ${file}: invalid JSON: ${(e as Error).message}`, { path: file });
    }
    if (!isPlainObject(doc)) {
      throw new OspError('AGENT_LOCAL_DATA_INVALID', `local-data file ${file}: expected a JSON object at the top level, got ${Array.isArray(doc) ? 'an array' : typeof doc}`, { path: file });
    }
    docs.push(doc);
  }
  return docs;
}
