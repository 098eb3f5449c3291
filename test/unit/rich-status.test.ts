import { describe, expect, it } from 'vitest';
import { OspError } from '../../common/errors.js';
import { decodeRichStatus, encodeRichStatus, richStatusOf } from '../../common/rich-status.js';

// Serialized by Python protobuf 3.21 (Debian python3-protobuf) from classes compiled out of
// test/foundation/proto/google/rpc/*.proto: a Status holding an ErrorInfo, a BadRequest and a
// google.protobuf.Duration this decoder does not know.
const PYTHON_STATUS = '080312326e6f6465735b305d202861293a206d61635b305d3a20227a7a223a2065787065637465642061204d414320616464726573731a670a28747970652e676f6f676c65617069732e636f6d2f676f6f676c652e7270632e4572726f72496e666f123b0a134e4f44455f494d504f52545f494e56414c494412036f73701a140a06736f75726365120a6e6f6465732e6a736f6e1a090a046e6f64651201611a740a29747970652e676f6f676c65617069732e636f6d2f676f6f676c652e7270632e4261645265717565737412470a450a0f6e6f6465735b305d2e6d61635b305d12326e6f6465735b305d202861293a206d61635b305d3a20227a7a223a2065787065637465642061204d414320616464726573731a320a2c747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e4475726174696f6e12020805';

const never = () => false;

describe('google.rpc.Status encoding', () => {
  it('decodes a Status a Python protobuf peer serialized, keeping unknown detail types by URL', () => {
    const line = 'nodes[0] (a): mac[0]: "zz": expected a MAC address';
    expect(decodeRichStatus(Buffer.from(PYTHON_STATUS, 'hex'))).toEqual({
      code: 3,
      message: line,
      errorInfo: { reason: 'NODE_IMPORT_INVALID', domain: 'osp', metadata: { source: 'nodes.json', node: 'a' } },
      fieldViolations: [{ field: 'nodes[0].mac[0]', description: line }],
      otherDetails: ['type.googleapis.com/google.protobuf.Duration'],
    });
  });

  it('encodes that Status to the same bytes the Python peer did (field order and all)', () => {
    const s = decodeRichStatus(Buffer.from(PYTHON_STATUS, 'hex'));
    // Without the Duration, which this encoder never writes.
    const expected = PYTHON_STATUS.slice(0, PYTHON_STATUS.indexOf('1a320a2c'));
    expect(Buffer.from(encodeRichStatus(s)).toString('hex')).toBe(expected);
  });

  it('round-trips UTF-8, empty fields and many violations', () => {
    const s = {
      code: 9, message: 'nœud « é » refusé', errorInfo: { reason: 'NODE_STATE_INVALID', domain: 'osp', metadata: { allowed: '', state: 'manageable' } },
      fieldViolations: Array.from({ length: 50 }, (_, i) => ({ field: `nodes[${i}].name`, description: `problem ${i}` })), otherDetails: [],
    };
    expect(decodeRichStatus(encodeRichStatus(s))).toEqual(s);
    expect(decodeRichStatus(encodeRichStatus({ code: 0, message: '', fieldViolations: [] })))
      .toEqual({ code: 0, message: '', fieldViolations: [], otherDetails: [] });
  });

  it('refuses bytes that are not a protobuf message', () => {
    expect(() => decodeRichStatus(Buffer.from('1aff', 'hex'))).toThrow();
  });
});

describe('richStatusOf', () => {
  it('puts the catalogue code in ErrorInfo.reason and scalar details in its metadata, lists joined', () => {
    const e = new OspError('NODE_STATE_INVALID', "node n is 'manageable'", { node: 'n', state: 'manageable', allowed: ['inspect', 'provide'], extra: { a: 1 } });
    const s = richStatusOf(e, never);
    expect(s.code).toBe(9);
    expect(s.errorInfo).toEqual({ reason: 'NODE_STATE_INVALID', domain: 'osp', metadata: { node: 'n', state: 'manageable', allowed: 'inspect, provide' } });
    expect(s.fieldViolations).toEqual([]);
    const long = richStatusOf(new OspError('CONFIG_INVALID', 'x', { key: 'k', value: 'v'.repeat(1000) }), never);
    expect(long.errorInfo!.metadata.value).toBe(`${'v'.repeat(256)}…`);
  });

  it('a refusal of one field is a field violation on it; a secret field keeps its value home', () => {
    const e = new OspError('NODE_INVALID', 'driver_info.password: expected a string', { field: 'driver_info.password', value: 'Hunter2' });
    const s = richStatusOf(e, (f) => f.endsWith('password'));
    expect(s.errorInfo!.metadata).toEqual({ field: 'driver_info.password' });
    expect(s.fieldViolations).toEqual([{ field: 'driver_info.password', description: e.message }]);
    expect(Buffer.from(encodeRichStatus(s)).toString()).not.toContain('Hunter2');
  });

  it('string problems travel with an empty field; a huge refusal stays under 4 KiB and counts what it left out', () => {
    const problems = Array.from({ length: 500 }, (_, i) => ({ field: `nodes[${i}].mac`, description: `nodes[${i}] (node-${i}): mac: "x": expected a MAC address` }));
    const big = richStatusOf(new OspError('NODE_IMPORT_INVALID', problems.map((p) => p.description).join('\n'), { problems }), never);
    expect(encodeRichStatus(big).length).toBeLessThanOrEqual(4096);
    expect(big.fieldViolations.length).toBeGreaterThan(10);
    expect(Number(big.errorInfo!.metadata.problems_omitted)).toBe(500 - big.fieldViolations.length);
    expect(richStatusOf(new OspError('RULE_INVALID', 'r: 1 problem(s):\nrules[0].op: bad', { problems: ['rules[0].op: bad'] }), never).fieldViolations)
      .toEqual([{ field: '', description: 'rules[0].op: bad' }]);
  });
});
