import { readFileSync } from 'node:fs';
import path from 'node:path';
import { RULES_DIR } from './helpers.js';

export const ruleText = (file: string) => readFileSync(path.join(RULES_DIR, file), 'utf8');

const UNQUOTED = '- [{inventory.memory.physical_mb}, 65536]';

/** The YAML sample with its unquoted template quoted, as YAML needs. */
export const quotedSample = () => ruleText('ironic-inspection-rules.yaml.sample').replace(UNQUOTED, '- ["{inventory.memory.physical_mb}", 65536]');

/** …and read with brackets, as Ironic's templates need for a mapping: the whole file then imports. */
export const fixedSample = () => ruleText('ironic-inspection-rules.yaml.sample').replace(UNQUOTED, '- ["{inventory[memory][physical_mb]}", 65536]');
