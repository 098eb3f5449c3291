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
    const line = errorLine(source, msg);
    const where = line === undefined ? fileForErrors : `${fileForErrors}:${line}`;
    throw new OspError('AGENT_TEMPLATE_INVALID', `template ${where}: ${msg}`, { file: fileForErrors, line });
  }
}

/**
 * mustache.js reports a character offset, and for unclosed tags/sections the
 * offset where it gave up (often end of file); the operator needs the line
 * where the offending tag was opened.
 */
function errorLine(source: string, msg: string): number | undefined {
  const at = /\bat (\d+)\s*$/.exec(msg);
  if (!at) return undefined;
  const offset = Number(at[1]);
  const section = /^Unclosed section "(.*)" at/.exec(msg);
  if (section) {
    const name = section[1].replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    let open = -1;
    for (const m of source.slice(0, offset).matchAll(new RegExp(`\\{\\{\\s*[#^]\\s*${name}\\s*\\}\\}`, 'g'))) open = m.index;
    if (open >= 0) return lineOf(source, open);
  }
  if (msg.startsWith('Unclosed tag')) {
    const open = source.lastIndexOf('{{', offset);
    if (open >= 0) return lineOf(source, open);
  }
  return lineOf(source, offset);
}

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < Math.min(offset, text.length); i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
