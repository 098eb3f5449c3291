import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { OspError } from '../../common/errors.js';
import { collectStackBundle, type StackBundle } from '../stack-bundle.js';
import { renderOvercloud, SERVICE_OFF, type ServiceLookup } from './render.js';
import { parseRoles, unknownRoleParameters, type Role } from './roles.js';
import { readServiceShape, type ServiceShape } from './services.js';

/** The default template collection, beside cli/ in the source tree and in the package. */
export const DEFAULT_TEMPLATES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../deploy');
export const REGISTRY_ENV = 'overcloud-resource-registry.yaml';
export const ROLES_FILE = 'roles_data.yaml';
/** Where the rendered template sits in the tree: service types resolve from here. */
export const GENERATED_TEMPLATE = 'overcloud.yaml';

export interface OvercloudSources {
  templatesDir?: string;
  rolesFile?: string;
  environments?: string[];
  cwd?: string;
}

export interface OvercloudBundle extends StackBundle {
  roles: Role[];
  /** The rendered top-level template, as sent. */
  templateText: string;
  /** A top-level parameter's value from the environments (`parameters` over `parameter_defaults`, later files win), if any sets it. */
  parameterValue(name: string): unknown;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

async function readText(file: string, what: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new OspError('TEMPLATE_INVALID', `${what}: cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : code ?? (e as Error).message}`);
  }
}

interface EnvFacts {
  /** type → absolute template path, or SERVICE_OFF; later files win, as in the engine. */
  registry: Map<string, string>;
  parameterNames: Set<string>;
  defaults: Map<string, unknown>;
  explicit: Map<string, unknown>;
}

async function readEnvironments(files: string[]): Promise<EnvFacts> {
  const facts: EnvFacts = { registry: new Map(), parameterNames: new Set(), defaults: new Map(), explicit: new Map() };
  for (const file of files) {
    let doc: unknown;
    try {
      doc = YAML.parse(await readText(file, `-e ${file}`));
    } catch (e) {
      if (e instanceof OspError) throw e;
      throw new OspError('TEMPLATE_INVALID', `-e ${file}: not YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    if (doc === null || doc === undefined) continue;
    if (!isObj(doc)) throw new OspError('TEMPLATE_INVALID', `-e ${file}: expected a mapping of sections (parameter_defaults, resource_registry)`);
    for (const section of ['parameters', 'parameter_defaults']) {
      if (!isObj(doc[section])) continue;
      for (const [k, v] of Object.entries(doc[section] as object)) {
        facts.parameterNames.add(k);
        (section === 'parameters' ? facts.explicit : facts.defaults).set(k, v);
      }
    }
    if (!isObj(doc.resource_registry)) continue;
    for (const [type, target] of Object.entries(doc.resource_registry)) {
      if (typeof target !== 'string') continue;
      if (target === 'OS::Heat::None') facts.registry.set(type, SERVICE_OFF);
      else if (/\.ya?ml$/.test(target)) facts.registry.set(type, path.resolve(path.dirname(file), target));
    }
  }
  return facts;
}

/**
 * Everything `overcloud deploy` sends: the roles rendered into the top-level
 * template, the registry environment first, then the operator's -e files,
 * and every file they reference. Bad input is refused here, before any call.
 */
export async function overcloudBundle(src: OvercloudSources): Promise<OvercloudBundle> {
  const cwd = src.cwd ?? process.cwd();
  const dir = path.resolve(cwd, src.templatesDir ?? DEFAULT_TEMPLATES_DIR);
  const rolesFile = path.resolve(cwd, src.rolesFile ?? path.join(dir, ROLES_FILE));
  const roles = parseRoles(path.relative(cwd, rolesFile) || rolesFile, await readText(rolesFile, src.rolesFile ? `-r ${src.rolesFile}` : 'roles'));
  const envFiles = [path.join(dir, REGISTRY_ENV), ...(src.environments ?? []).map((e) => path.resolve(cwd, e))];
  const facts = await readEnvironments(envFiles);
  const strangers = unknownRoleParameters(roles, facts.parameterNames);
  if (strangers.length) {
    throw new OspError('TEMPLATE_INVALID', `environment parameters for roles that do not exist: ${strangers.join(', ')}; the roles are ${roles.map((r) => r.name).join(', ')} (pass your roles file with -r)`, { parameters: strangers });
  }
  const shapes = new Map<string, ServiceShape>();
  for (const r of roles) {
    for (const type of r.services) {
      const target = facts.registry.get(type);
      if (target === undefined || target === SERVICE_OFF || shapes.has(type)) continue;
      const rel = path.relative(dir, target).split(path.sep).join('/');
      shapes.set(type, readServiceShape(type, rel, await readText(target, `role ${r.name}: service ${type}`)));
    }
  }
  const lookup: ServiceLookup = (type) => (facts.registry.get(type) === SERVICE_OFF ? SERVICE_OFF : shapes.get(type));
  const templateText = `# Generated by ospctl overcloud from ${path.basename(rolesFile)}; not a file on disk.\n${YAML.stringify(renderOvercloud(roles, lookup), { lineWidth: 0 })}`;
  const generatedAt = path.join(dir, GENERATED_TEMPLATE);
  const bundle = await collectStackBundle(generatedAt, envFiles, cwd, { [generatedAt]: Buffer.from(templateText) });
  const parameterValue = (name: string) => (facts.explicit.has(name) ? facts.explicit.get(name) : facts.defaults.get(name));
  return { ...bundle, roles, templateText, parameterValue };
}
