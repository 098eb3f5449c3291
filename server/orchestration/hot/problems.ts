import { OspError, type Problem } from '../../../common/errors.js';

/** Where in the operator's bundle something is: 1-based line and column. */
export interface Position {
  file: string;
  line: number;
  column: number;
}

/** One thing wrong with a template or environment, placed in its file. */
export interface HotProblem extends Position {
  message: string;
}

export function problemAt(pos: Position | undefined, file: string, message: string): HotProblem {
  return pos ? { file: pos.file, line: pos.line, column: pos.column, message } : { file, line: 1, column: 1, message };
}

export function formatProblem(p: HotProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.message}`;
}

/** Problems in the shape every refusal carries (common/errors.ts): the place is the field. */
export function asProblems(problems: HotProblem[]): Problem[] {
  return problems.map((p) => ({ field: `${p.file}:${p.line}:${p.column}`, description: formatProblem(p) }));
}

/** The refusal of a whole stack request: one line per problem, every problem at once. */
export function templateInvalid(problems: HotProblem[]): OspError {
  return new OspError('TEMPLATE_INVALID', problems.map(formatProblem).join('\n'), { problems: asProblems(problems), hotProblems: problems });
}

/** The placed problems a refusal made by templateInvalid carries. */
export function hotProblemsOf(e: unknown): HotProblem[] | undefined {
  const d = (e as { details?: { hotProblems?: HotProblem[] } } | undefined)?.details;
  return Array.isArray(d?.hotProblems) ? d.hotProblems : undefined;
}
