import { describe, expect, it } from 'vitest';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { Connection, describeRefusal } from '../../cli/client.js';
import { encodeRichStatus, type RichStatus } from '../../common/rich-status.js';

const conn = new Connection({ server: '127.0.0.1:1', ca: '', token: 't', source: 'admin.yaml' }, 5000);

function refusal(code: status, message: string, rich?: Omit<RichStatus, 'otherDetails'>, legacyCode?: string): ServiceError {
  const md = new Metadata();
  if (rich) md.set('grpc-status-details-bin', Buffer.from(encodeRichStatus(rich)));
  if (legacyCode) md.set('osp-error-code', legacyCode);
  return Object.assign(new Error(message), { code, details: message, metadata: md });
}

const info = (reason: string, metadata: Record<string, string> = {}) => ({ reason, domain: 'osp', metadata });

describe('ospctl reads refusals from the rich error model', () => {
  it('prints one line per field violation, not the message text, under a heading naming the source', () => {
    const e = conn.explain(refusal(status.INVALID_ARGUMENT, 'text a client must not need to parse', {
      code: status.INVALID_ARGUMENT, message: 'x', errorInfo: info('RULE_INVALID', { source: 'rules.yaml' }),
      fieldViolations: [{ field: '', description: 'rules[0].op: "x": expected one of …' }, { field: 'rules[1].phase', description: 'rules[1].phase: "cleaning": expected main' }],
    }));
    expect(e.code).toBe('RULE_INVALID');
    expect(e.grpcCode).toBe(status.INVALID_ARGUMENT);
    expect(e.message).toBe('rules.yaml: 2 problem(s):\nrules[0].op: "x": expected one of …\nrules[1].phase: "cleaning": expected main');
  });

  it('takes the code from ErrorInfo.reason; an unknown one falls back to the gRPC status; no details, the message', () => {
    expect(conn.explain(refusal(status.NOT_FOUND, "node 'n' not found", { code: 5, message: '', errorInfo: info('NODE_NOT_FOUND'), fieldViolations: [] })))
      .toMatchObject({ code: 'NODE_NOT_FOUND', message: "node 'n' not found" });
    expect(conn.explain(refusal(status.FAILED_PRECONDITION, 'new', { code: 9, message: '', errorInfo: info('SOMETHING_NEWER'), fieldViolations: [] })).code)
      .toBe('FAILED_PRECONDITION');
    expect(conn.explain(refusal(status.NOT_FOUND, 'old server', undefined, 'NODE_NOT_FOUND'))).toMatchObject({ code: 'NODE_NOT_FOUND', message: 'old server' });
  });

  it('when the server left problems out of the details, prints the complete message instead', () => {
    const rich = { code: 3, message: '', errorInfo: info('NODE_IMPORT_INVALID', { problems_omitted: '1' }), fieldViolations: [{ field: 'nodes[0].mac', description: 'one' }], otherDetails: [] };
    expect(describeRefusal(rich, 'one\ntwo')).toBe('one\ntwo');
  });

  it('a channel failure with no code from ospd is worded by ospctl', () => {
    expect(conn.explain(refusal(status.UNAVAILABLE, 'connect ECONNREFUSED 127.0.0.1:1')).message).toMatch(/connection refused \(is ospd running/);
  });
});
