import { parseMetricKey } from '../../common/topics.js';

/**
 * ospd's own counters and gauges plus the latest node metrics, rendered in the
 * Prometheus text exposition format 0.0.4. The HTTP listener mounts
 * `render()` at `/metrics` with content type `PROMETHEUS_CONTENT_TYPE`.
 */

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

type Labels = Record<string, string>;

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function escapeHelp(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

function escapeLabelValue(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function formatLabels(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabelValue(labels[k])}"`).join(',')}}`;
}

function seriesKey(labels: Labels): string {
  return formatLabels(labels);
}

class Family {
  readonly series = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
  ) {}

  protected add(labels: Labels, by: number, absolute: boolean): void {
    for (const k of Object.keys(labels)) {
      if (!LABEL_NAME.test(k)) throw new Error(`metric ${this.name}: label name ${JSON.stringify(k)} is invalid; expected [a-zA-Z_][a-zA-Z0-9_]*`);
    }
    const key = seriesKey(labels);
    const s = this.series.get(key);
    if (s) s.value = absolute ? by : s.value + by;
    else this.series.set(key, { labels: { ...labels }, value: by });
  }
}

export class Counter extends Family {
  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new Error(`counter ${this.name}: increment ${by} is negative; counters only go up`);
    this.add(labels, by, false);
  }
}

export class Gauge extends Family {
  set(labels: Labels, value: number): void {
    this.add(labels, value, true);
  }
  inc(labels: Labels = {}, by = 1): void {
    this.add(labels, by, false);
  }
  dec(labels: Labels = {}, by = 1): void {
    this.add(labels, -by, false);
  }
}

/** A source of extra exposition text, e.g. the node metrics cache. */
export interface MetricsCollector {
  collect(): string;
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();
  private readonly collectors: MetricsCollector[] = [];

  counter(name: string, help: string): Counter {
    return this.register(new Counter(name, help, 'counter'));
  }

  gauge(name: string, help: string): Gauge {
    return this.register(new Gauge(name, help, 'gauge'));
  }

  addCollector(c: MetricsCollector): void {
    this.collectors.push(c);
  }

  private register<T extends Family>(f: T): T {
    if (!METRIC_NAME.test(f.name)) throw new Error(`metric name ${JSON.stringify(f.name)} is invalid; expected [a-zA-Z_:][a-zA-Z0-9_:]*`);
    const existing = this.families.get(f.name);
    if (existing) {
      if (existing.constructor !== f.constructor) throw new Error(`metric ${f.name} already registered as a ${existing.type}`);
      return existing as T;
    }
    this.families.set(f.name, f);
    return f;
  }

  render(): string {
    const out: string[] = [];
    for (const f of this.families.values()) {
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
      for (const s of f.series.values()) out.push(`${f.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
    }
    let text = out.length ? `${out.join('\n')}\n` : '';
    for (const c of this.collectors) text += c.collect();
    return text;
  }
}

/**
 * Latest metrics per node, exported with a `node` label. Keys in the agents'
 * flattened notation (`name{label="v"}`) are turned back into labels; keys
 * that are not valid series names are left out.
 */
export class NodeMetricsCache implements MetricsCollector {
  private readonly latest = new Map<string, Record<string, number>>();

  update(node: string, values: Record<string, number>): void {
    this.latest.set(node, values);
  }

  remove(node: string): void {
    this.latest.delete(node);
  }

  get(node: string): Record<string, number> | undefined {
    return this.latest.get(node);
  }

  collect(): string {
    const families = new Map<string, string[]>();
    for (const [node, values] of this.latest) {
      for (const [key, value] of Object.entries(values)) {
        if (key === 'ts') continue;
        const parsed = parseMetricKey(key);
        if (!parsed || 'node' in parsed.labels) continue;
        let lines = families.get(parsed.name);
        if (!lines) families.set(parsed.name, (lines = []));
        lines.push(`${parsed.name}${formatLabels({ ...parsed.labels, node })} ${formatValue(value)}`);
      }
    }
    const out: string[] = [];
    for (const [name, lines] of families) {
      out.push(`# TYPE ${name} ${name.endsWith('_total') ? 'counter' : 'gauge'}`, ...lines);
    }
    return out.length ? `${out.join('\n')}\n` : '';
  }
}
