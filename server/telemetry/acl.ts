import { BASE_TOPIC, NODE_CHANNELS, nodePrefix, parseNodeTopic } from '../../common/topics.js';
import type { MqttIdentity } from './auth.js';

/**
 * The MQTT authorisation policy as pure functions, so it can be tested as a
 * matrix and applied at publish, subscribe and delivery time alike.
 */

export interface TopicLimits {
  maxTopicLevels: number;
  maxTopicBytes: number;
}

export const DEFAULT_TOPIC_LIMITS: TopicLimits = { maxTopicLevels: 16, maxTopicBytes: 1024 };

/**
 * Client ids and usernames become topic levels in logs and ACL decisions, so
 * MQTT wildcards and the level separator are refused in them.
 */
export function identifierProblem(field: 'client id' | 'username', value: string): string | null {
  if (value.length === 0) return `${field} is empty; expected a non-empty name`;
  if (/[+#/]/.test(value)) return `${field} ${JSON.stringify(value)} contains '+', '#' or '/'; expected none of them`;
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused here
  if (/[\u0000-\u001f\u007f]/.test(value)) return `${field} ${JSON.stringify(value)} contains control characters`;
  if (Buffer.byteLength(value) > 256) return `${field} is ${Buffer.byteLength(value)} bytes; expected at most 256`;
  return null;
}

/**
 * Topic name or filter sanity. MQTT 3.1.1 section 4.7.3: topics are at least
 * one character; section 1.5.3: UTF-8 strings must be well formed and must
 * not contain U+0000. Depth and size are our own limits.
 */
export function topicProblem(topic: string, limits: TopicLimits, isFilter: boolean): string | null {
  if (topic.length === 0) return 'topic is empty; expected at least one character (MQTT 3.1.1 section 4.7.3)';
  // A lone surrogate is what invalid UTF-8 decodes to after replacement
  // checks, and U+FFFD is the decoder's replacement for malformed bytes.
  // eslint-disable-next-line no-control-regex -- U+0000 is forbidden by the spec
  if (/[\u0000\ufffd]/.test(topic) || /[\ud800-\udfff]/.test(topic.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) {
    return 'topic is not well-formed UTF-8 or contains U+0000 (MQTT 3.1.1 section 1.5.3)';
  }
  const bytes = Buffer.byteLength(topic);
  if (bytes > limits.maxTopicBytes) return `topic is ${bytes} bytes; expected at most ${limits.maxTopicBytes}`;
  const levels = topic.split('/').length;
  if (levels > limits.maxTopicLevels) return `topic has ${levels} levels; expected at most ${limits.maxTopicLevels}`;
  if (!isFilter && /[+#]/.test(topic)) return 'topic name contains a wildcard (MQTT 3.1.1 section 3.3.2.1)';
  return null;
}

/** May this identity publish on this (already validated) topic? */
export function mayPublish(identity: MqttIdentity, topic: string): boolean {
  switch (identity.kind) {
    case 'server':
      return true;
    case 'reader':
      return false;
    case 'agent': {
      const parsed = parseNodeTopic(topic);
      return parsed !== null && parsed.node === identity.node && (NODE_CHANNELS as readonly string[]).includes(parsed.channel);
    }
  }
}

/**
 * May this identity subscribe with this filter? Agents only under their own
 * prefix (no wildcard that could reach beyond it); readers anything under
 * `osp/` but not `$SYS`; the server anything.
 */
export function maySubscribe(identity: MqttIdentity, filter: string): boolean {
  switch (identity.kind) {
    case 'server':
      return true;
    case 'reader':
      return filter === `${BASE_TOPIC}/#` || filter.startsWith(`${BASE_TOPIC}/`);
    case 'agent': {
      const prefix = nodePrefix(identity.node);
      if (!filter.startsWith(prefix)) return false;
      // Wildcards are fine only below the node's own prefix.
      return !/[+#]/.test(prefix);
    }
  }
}

/** Delivery-time check: may this identity receive a message on this topic? */
export function mayReceive(identity: MqttIdentity, topic: string): boolean {
  switch (identity.kind) {
    case 'server':
      return true;
    case 'reader':
      return topic.startsWith(`${BASE_TOPIC}/`);
    case 'agent':
      return topic.startsWith(nodePrefix(identity.node));
  }
}
