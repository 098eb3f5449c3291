import type { Logger } from '../../common/logging.js';
import { nodeTopic } from '../../common/topics.js';
import { OSPD_EVENT_SOURCE, type NodeEventSink, type NodeLiveEvent } from '../nodes/live-events.js';
import type { InProcessBus } from './broker.js';

/**
 * Publishes ospd's node events on the broker: QoS 1, not retained (an event
 * is a moment; the node's state is `ospctl node show`). A broker that is not
 * running loses them, as an MQTT feed may; the store still has each one.
 */
export class MqttNodeEvents implements NodeEventSink {
  constructor(private readonly bus: InProcessBus, private readonly log: Logger) {}

  publish(n: { name: string; uuid: string }, e: NodeLiveEvent): void {
    const { detail, ...head } = e;
    const payload = JSON.stringify({ ...head, ...detail, node: n.name, uuid: n.uuid, at: new Date().toISOString(), source: OSPD_EVENT_SOURCE });
    this.bus.publish(nodeTopic(n.name, 'events'), payload, { qos: 1 })
      .catch((err: Error) => this.log.debug({ node: n.name, type: e.type, err: err.message }, 'node event not published'));
  }
}
