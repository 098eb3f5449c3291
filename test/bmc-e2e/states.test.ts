import { describe, it, expect } from 'vitest';
import { PROVISION_STATES, type ProvisionState } from '../../server/nodes/model.js';
import { RAMDISK_STATES, TRANSITIONS, WAIT_STATES, allowedActions, nextState, OPERATOR_ACTIONS, OUTCOMES } from '../../server/nodes/states.js';
import { OspError } from '../../common/errors.js';

describe('provision state table', () => {
  it('has a row for every Ironic state and only names known states', () => {
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...PROVISION_STATES].sort());
    for (const row of Object.values(TRANSITIONS)) {
      for (const [t, to] of Object.entries(row)) {
        expect([...OPERATOR_ACTIONS, ...OUTCOMES]).toContain(t);
        expect(PROVISION_STATES).toContain(to);
      }
    }
  });

  it('walks enroll → manageable → available → active → back to available', () => {
    const path: [ProvisionState, Parameters<typeof nextState>[2], ProvisionState][] = [
      ['enroll', 'manage', 'verifying'], ['verifying', 'done', 'manageable'],
      ['manageable', 'inspect', 'inspecting'], ['inspecting', 'wait', 'inspect wait'], ['inspect wait', 'done', 'manageable'],
      ['manageable', 'provide', 'cleaning'], ['cleaning', 'wait', 'clean wait'], ['clean wait', 'done', 'available'],
      ['available', 'deploy', 'deploying'], ['deploying', 'wait', 'wait call-back'], ['wait call-back', 'done', 'active'],
      ['active', 'delete', 'deleting'], ['deleting', 'done', 'cleaning'], ['cleaning', 'done', 'available'],
    ];
    for (const [from, t, to] of path) expect(nextState('n1', from, t)).toBe(to);
  });

  it('sends failures where Ironic does', () => {
    expect(nextState('n', 'verifying', 'fail')).toBe('enroll');
    expect(nextState('n', 'inspect wait', 'fail')).toBe('inspect failed');
    expect(nextState('n', 'clean wait', 'fail')).toBe('clean failed');
    expect(nextState('n', 'wait call-back', 'fail')).toBe('deploy failed');
    expect(nextState('n', 'deleting', 'fail')).toBe('error');
    expect(nextState('n', 'inspect failed', 'manage')).toBe('manageable');
    expect(nextState('n', 'clean failed', 'manage')).toBe('manageable');
    expect(nextState('n', 'available', 'manage')).toBe('manageable');
  });

  it('allows abort only from wait states', () => {
    expect([...WAIT_STATES].sort()).toEqual(['clean wait', 'inspect wait', 'wait call-back']);
    expect(nextState('n', 'inspect wait', 'abort')).toBe('inspect failed');
    for (const s of PROVISION_STATES.filter((x) => !WAIT_STATES.includes(x))) {
      expect(() => nextState('n', s, 'abort')).toThrow(OspError);
    }
  });

  it('boots the ramdisk in the waits and the states that lead into them', () => {
    expect([...RAMDISK_STATES].sort()).toEqual(['clean wait', 'cleaning', 'deploying', 'inspect wait', 'inspecting', 'wait call-back']);
  });

  it('refuses an illegal action naming the state and the allowed actions', () => {
    const err = (() => { try { nextState('web-1', 'enroll', 'provide'); } catch (e) { return e as OspError; } })();
    expect(err?.code).toBe('NODE_STATE_INVALID');
    expect(err?.message).toBe("node web-1 is 'enroll': cannot 'provide' there; allowed actions: manage");
    expect(allowedActions('manageable')).toEqual(['inspect', 'provide', 'clean']);
    const busy = (() => { try { nextState('web-1', 'verifying', 'manage'); } catch (e) { return e as OspError; } })();
    expect(busy?.message).toContain('allowed actions: none');
  });

  it('reaches every state from enroll', () => {
    const seen = new Set<ProvisionState>(['enroll']);
    const queue: ProvisionState[] = ['enroll'];
    while (queue.length) {
      for (const to of Object.values(TRANSITIONS[queue.shift()!])) if (!seen.has(to)) { seen.add(to); queue.push(to); }
    }
    expect([...seen].sort()).toEqual([...PROVISION_STATES].sort());
  });
});
