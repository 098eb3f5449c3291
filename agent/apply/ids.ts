import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { OspError } from '../../common/errors.js';

/**
 * Resolves owner/group names against the target system's databases (under
 * `--root` that is the image being built, not the build host), falling back to
 * the host's when the root has none.
 */
export class IdResolver {
  constructor(private readonly root: string) {}

  async uid(owner: string | number, forFile: string): Promise<number> {
    return typeof owner === 'number' ? owner : this.lookup('passwd', owner, forFile, 'owner');
  }

  async gid(group: string | number, forFile: string): Promise<number> {
    return typeof group === 'number' ? group : this.lookup('group', group, forFile, 'group');
  }

  private async lookup(db: 'passwd' | 'group', name: string, forFile: string, field: string): Promise<number> {
    for (const file of [path.join(this.root, 'etc', db), path.join('/etc', db)]) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        continue;
      }
      for (const line of text.split('\n')) {
        const cols = line.split(':');
        if (cols[0] === name && cols.length >= 3 && /^\d+$/.test(cols[2])) return Number(cols[2]);
      }
    }
    throw new OspError('AGENT_CONTROL_INVALID', `control file ${forFile}.oac: ${field} = "${name}"; expected a name listed in /etc/${db}`, {
      file: forFile,
      field,
    });
  }
}
