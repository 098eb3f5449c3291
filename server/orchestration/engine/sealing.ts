import { SecretBox, MASK } from '../../security/secrets.js';
import type { ResourceData } from './contract.js';

/**
 * How stack state meets SecretBox: a plug-in's secret data keys are sealed
 * one by one (the rest of its data stays readable in the database), whole
 * JSON documents (requests, bundles, tainted properties) are sealed as one.
 */
export class StackSealer {
  constructor(private readonly box: SecretBox) {}

  /** `whole`: the data came from secret inputs (a hidden parameter, another resource's secret), so all of it is sealed. */
  sealData(data: ResourceData, secretKeys: readonly string[] = [], whole = false): string {
    if (whole) return this.sealJson(data);
    const out: ResourceData = { ...data };
    for (const k of secretKeys) if (out[k] !== undefined) out[k] = this.box.encrypt(JSON.stringify(out[k]));
    return JSON.stringify(out);
  }

  openData(text: string | null, secretKeys: readonly string[] = []): ResourceData | undefined {
    if (text === null) return undefined;
    if (SecretBox.isSealed(text)) return this.openJson<ResourceData>(text);
    const out = JSON.parse(text) as ResourceData;
    for (const k of secretKeys) {
      const v = out[k];
      if (typeof v === 'string' && SecretBox.isSealed(v)) out[k] = JSON.parse(this.box.decrypt(v));
    }
    return out;
  }

  sealJson(value: unknown): string {
    return this.box.encrypt(JSON.stringify(value));
  }

  /** Plain JSON or a sealed JSON document. */
  openJson<T>(text: string): T {
    return JSON.parse(SecretBox.isSealed(text) ? this.box.decrypt(text) : text) as T;
  }
}

/** Every string in a value that equals or contains a secret replaced by the mask: the one way stack secrets leave ospd. */
export function maskValue(value: unknown, secrets: ReadonlySet<string>): unknown {
  if (secrets.size === 0) return value;
  if (typeof value === 'string') {
    for (const s of secrets) if (s !== '' && value.includes(s)) return MASK;
    return value;
  }
  if (Array.isArray(value)) return value.map((v) => maskValue(v, secrets));
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, maskValue(v, secrets)]));
  }
  return value;
}

/** The strings a secret value holds (a secret may be a list or map of strings). */
export function secretStrings(value: unknown, into: Set<string>): void {
  if (typeof value === 'string') { if (value.length >= 4) into.add(value); return; }
  if (Array.isArray(value)) for (const v of value) secretStrings(v, into);
  else if (value && typeof value === 'object') for (const v of Object.values(value)) secretStrings(v, into);
}
