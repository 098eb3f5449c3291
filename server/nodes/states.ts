import { OspError } from '../../common/errors.js';
import type { ProvisionState } from './model.js';

/**
 * What moves a node between provision states. Operator actions are what an
 * operator may request (Ironic's verbs); the others are outcomes the server
 * reports when work it started finishes, fails or starts waiting on the
 * ramdisk agent.
 */
export const OPERATOR_ACTIONS = ['manage', 'inspect', 'provide', 'clean', 'deploy', 'rebuild', 'delete', 'abort'] as const;
export type OperatorAction = (typeof OPERATOR_ACTIONS)[number];
export const OUTCOMES = ['done', 'fail', 'wait'] as const;
export type Outcome = (typeof OUTCOMES)[number];
export type Transition = OperatorAction | Outcome;

/**
 * The one table of legal transitions, after Ironic's state machine
 * (ironic/common/states.py): state → action/outcome → next state. Anything
 * absent is illegal. Later features (inspection, cleaning, deploy) drive
 * their nodes through this table only.
 */
export const TRANSITIONS: Readonly<Record<ProvisionState, Readonly<Partial<Record<Transition, ProvisionState>>>>> = {
  enroll: { manage: 'verifying' },
  // Credentials are being checked against the BMC.
  verifying: { done: 'manageable', fail: 'enroll' },
  manageable: { inspect: 'inspecting', provide: 'cleaning', clean: 'cleaning' },
  inspecting: { wait: 'inspect wait', done: 'manageable', fail: 'inspect failed' },
  // The ramdisk agent is booting and will post its inventory.
  'inspect wait': { done: 'manageable', fail: 'inspect failed', abort: 'inspect failed' },
  'inspect failed': { inspect: 'inspecting', manage: 'manageable' },
  cleaning: { wait: 'clean wait', done: 'available', fail: 'clean failed' },
  'clean wait': { done: 'available', fail: 'clean failed', abort: 'clean failed' },
  'clean failed': { manage: 'manageable' },
  available: { manage: 'manageable', deploy: 'deploying' },
  deploying: { wait: 'wait call-back', done: 'active', fail: 'deploy failed' },
  // The ramdisk agent is writing the image and will call back.
  'wait call-back': { done: 'active', fail: 'deploy failed', abort: 'deploy failed' },
  'deploy failed': { deploy: 'deploying', rebuild: 'deploying', delete: 'deleting' },
  active: { rebuild: 'deploying', delete: 'deleting' },
  // Undeploy: tear down, then clean before the node is offered again.
  deleting: { done: 'cleaning', fail: 'error' },
  error: { rebuild: 'deploying', delete: 'deleting' },
};

/**
 * States in which the server is waiting for the ramdisk agent to do work it
 * started; only these accept `abort`, and only in these does a booting
 * ramdisk get a node to work on.
 */
export const WAIT_STATES: readonly ProvisionState[] = (Object.keys(TRANSITIONS) as ProvisionState[])
  .filter((s) => TRANSITIONS[s].abort !== undefined);

/** States in which the machine must boot the ramdisk: the waits and the states that lead into them. */
export const RAMDISK_STATES: readonly ProvisionState[] = (Object.keys(TRANSITIONS) as ProvisionState[])
  .filter((s) => TRANSITIONS[s].wait !== undefined || WAIT_STATES.includes(s));

/** Operator actions legal in a state, in table order. */
export function allowedActions(state: ProvisionState): OperatorAction[] {
  const row = TRANSITIONS[state] ?? {};
  return OPERATOR_ACTIONS.filter((a) => row[a] !== undefined);
}

/**
 * The next state, or NODE_STATE_INVALID naming the node, the current state
 * and what it allows instead.
 */
export function nextState(nodeName: string, state: ProvisionState, t: Transition): ProvisionState {
  const row = TRANSITIONS[state];
  if (!row) throw new OspError('INTERNAL', `node ${nodeName}: unknown provision state ${JSON.stringify(state)}`);
  const next = row[t];
  if (next !== undefined) return next;
  const allowed = allowedActions(state);
  const verb = (OUTCOMES as readonly string[]).includes(t) ? `cannot report '${t}'` : `cannot '${t}'`;
  throw new OspError('NODE_STATE_INVALID',
    `node ${nodeName} is '${state}': ${verb} there; allowed actions: ${allowed.length ? allowed.join(', ') : 'none (wait for the current operation)'}`,
    { node: nodeName, state, action: t, allowed });
}
