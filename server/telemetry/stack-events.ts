import type { Logger } from '../../common/logging.js';
import { stackEventsTopic } from '../../common/topics.js';
import type { StackEvent, StackOperations } from '../orchestration/engine/contract.js';
import type { Service } from '../lifecycle.js';
import type { InProcessBus } from './broker.js';

/** A stack name usable as one topic level: no separator, no wildcard, no control character. */
// eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here
const TOPIC_LEVEL = /^[^/+#\u0000-\u001f\u007f]{1,255}$/;

/**
 * Publishes every stack event on `osp/stacks/<top-level stack>/events`, so a
 * dashboard follows a deployment, nested stacks included, on one topic: QoS 1,
 * not retained (an event is a moment; the stack's state is `stack show`).
 * Only ospd publishes there (acl.ts: agents only under their node, readers
 * never); readers may subscribe, as to node events. A broker that is down
 * loses them, as an MQTT feed may; the engine still stores each one.
 */
export class MqttStackEvents implements Service {
  private off?: () => void;

  constructor(private readonly bus: InProcessBus, private readonly engine: Pick<StackOperations, 'onEvent'>, private readonly log: Logger) {}

  async start(): Promise<void> {
    this.off ??= this.engine.onEvent((e) => this.publish(e));
  }

  async stop(): Promise<void> {
    this.off?.();
    this.off = undefined;
  }

  publish(e: StackEvent): void {
    const top = e.stackPath.split('/')[0] || e.stack;
    if (!TOPIC_LEVEL.test(top)) {
      this.log.warn({ stack: top }, 'stack event not published: the stack name cannot be an MQTT topic level');
      return;
    }
    const payload = JSON.stringify({
      type: 'stack', stack: e.stack, stack_path: e.stackPath, resource: e.resource, physical_id: e.physicalId,
      status: e.status, status_reason: e.statusReason, at: e.at, id: e.id,
    });
    this.bus.publish(stackEventsTopic(top), payload, { qos: 1 })
      .catch((err: Error) => this.log.debug({ stack: top, id: e.id, err: err.message }, 'stack event not published'));
  }
}
