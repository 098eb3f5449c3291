import type { StackServiceClient } from '../../proto/gen/osp/v1/stack.js';
import type { Connection } from '../client.js';
import { allStackResources } from '../stack-client.js';
import { statusName } from '../stack-wait.js';
import { toServer } from './nodes.js';

const STEP_DEPLOYMENT = /Step(\d)$/;

/**
 * One line of overcloud progress for `--wait`: servers ready and deploying,
 * the steps whose deployments are running now, and failures so far. Running
 * steps (not "steps done") because deployments an update leaves alone keep
 * their COMPLETE from an earlier run and would read as done.
 */
export async function overcloudProgress(c: Connection, stacks: StackServiceClient, name: string): Promise<string> {
  let ready = 0;
  let deploying = 0;
  const running = new Set<number>();
  for (const x of await allStackResources(c, stacks, name, 1)) {
    const status = statusName(x.status);
    if (toServer(x)) {
      if (status.endsWith('_IN_PROGRESS')) deploying++;
      else if (status.endsWith('_COMPLETE') && !status.startsWith('DELETE')) ready++;
    } else if (x.stackPath === name && !x.name.startsWith('Overcloud') && status.endsWith('_IN_PROGRESS')) {
      const m = STEP_DEPLOYMENT.exec(x.name);
      if (m) running.add(Number(m[1]));
    }
  }
  const failures = (await c.call(stacks, stacks.listStackFailures, { stack: name })).failures.length;
  const steps = running.size ? `step ${[...running].sort().join(', ')} running` : 'no step running';
  return `nodes ${ready} ready${deploying ? `, ${deploying} deploying` : ''}; ${steps}; ${failures} failed deployment${failures === 1 ? '' : 's'}`;
}
