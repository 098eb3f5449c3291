import Mustache from 'mustache';
import { OspError } from '../../common/errors.js';

/**
 * os-apply-config's renderer semantics: no HTML escaping, a value that is not
 * a string renders as JSON, null/missing renders empty.
 */
function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  return JSON.stringify(value) ?? '';
}

class ConfigWriter extends Mustache.Writer {
  override unescapedValue(token: string[], context: Mustache.Context): string {
    const value: unknown = context.lookup(token[1]);
    return value == null ? '' : asText(value);
  }
}

const writer = new ConfigWriter();

/** Renders one mustache template; a parse error names the file and line. */
export function renderTemplate(source: string, view: Record<string, unknown>, fileForErrors: string): string {
  try {
    return writer.render(source, view, undefined, { escape: asText });
  } catch (e) {
    const msg = (e as Error).message;
    // mustache.js reports a character offset ("Unclosed tag at 23"); operators need a line.
    const at = /\bat (\d+)\s*$/.exec(msg);
    const line = at ? lineOf(source, Number(at[1])) : undefined;
    const where = line === undefined ? fileForErrors : `${fileForErrors}:${line}`;
    throw new OspError('AGENT_TEMPLATE_INVALID', `template ${where}: ${msg}`, { file: fileForErrors, line });
  }
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < Math.min(offset, text.length); i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
