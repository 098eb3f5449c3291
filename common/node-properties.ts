/**
 * A node's scheduling properties. Operators, node files, PATCH paths and
 * inspection rules name them in Ironic's snake_case; the wire (proto) and
 * ospd's model hold them in camelCase. This table is the one mapping.
 */
export interface NodeProperties {
  cpus?: number;
  memoryMb?: number;
  localGb?: number;
  cpuArch?: string;
  /** A static address for full-mode DHCP. */
  ipv4Address?: string;
}

export type PropertyField = keyof NodeProperties;

export const PROPERTY_FIELDS = {
  cpus: 'cpus', memory_mb: 'memoryMb', local_gb: 'localGb', cpu_arch: 'cpuArch', ipv4_address: 'ipv4Address',
} as const satisfies Record<string, PropertyField>;

/** The snake_case name an operator types. */
export type PropertyName = keyof typeof PROPERTY_FIELDS;
export const PROPERTY_NAMES = Object.keys(PROPERTY_FIELDS) as PropertyName[];

/** The camelCase field for a snake_case name, or undefined when osp has no such property. */
export function propertyField(name: string): PropertyField | undefined {
  return Object.hasOwn(PROPERTY_FIELDS, name) ? PROPERTY_FIELDS[name as PropertyName] : undefined;
}

/** Whole-number properties; the others are strings. */
export function isNumericProperty(f: PropertyField): f is 'cpus' | 'memoryMb' | 'localGb' {
  return f === 'cpus' || f === 'memoryMb' || f === 'localGb';
}

/** Only the known properties that are set (a proto message or a looser object may carry more, or undefineds). */
export function pickProperties(p: NodeProperties | undefined): NodeProperties {
  const out: Record<string, unknown> = {};
  for (const f of Object.values(PROPERTY_FIELDS)) if (p?.[f] !== undefined) out[f] = p[f];
  return out as NodeProperties;
}

/** The set properties under their snake_case names, in table order. */
export function propertiesBySnakeName(p: NodeProperties | undefined): Partial<Record<PropertyName, number | string>> {
  const out: Partial<Record<PropertyName, number | string>> = {};
  for (const name of PROPERTY_NAMES) {
    const v = p?.[PROPERTY_FIELDS[name]];
    if (v !== undefined) out[name] = v;
  }
  return out;
}
