import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { SecretBox, isSecretKey } from '../../server/security/secrets.js';
import { generateToken, hashToken, tokenMatches } from '../../server/security/tokens.js';
import { ensureServerTls } from '../../server/security/pki.js';
import { ensureAdminCredentials, rotateAdminToken } from '../../server/security/admin.js';

const made: string[] = [];
const dir = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'osp-sec-'));
  made.push(d);
  return d;
};
afterAll(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

describe('security primitives', () => {
  it('seals secrets with AES-GCM under a 0600 key and detects tampering', async () => {
    const d = dir();
    const box = await SecretBox.loadOrCreate(d);
    expect(statSync(path.join(d, 'secret.key')).mode & 0o777).toBe(0o600);
    const sealed = box.encrypt('pa55');
    expect(sealed).not.toContain('pa55');
    expect(box.encrypt('pa55')).not.toBe(sealed);
    expect((await SecretBox.loadOrCreate(d)).decrypt(sealed)).toBe('pa55');
    const flipped = sealed.slice(0, -4) + (sealed.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    expect(() => box.decrypt(flipped)).toThrow();
    expect(isSecretKey('password')).toBe(true);
    expect(isSecretKey('address')).toBe(false);
  });

  it('matches tokens by hash only', () => {
    const t = generateToken('admin');
    const h = hashToken(t);
    expect(tokenMatches(t, h)).toBe(true);
    expect(tokenMatches(t + 'x', h)).toBe(false);
    expect(tokenMatches('', h)).toBe(false);
    expect(tokenMatches(t, 'not-hex')).toBe(false);
  });

  it('creates a CA once and reissues the server certificate when names change', async () => {
    const d = dir();
    const a = await ensureServerTls(d, ['localhost', '127.0.0.1']);
    expect(a.issued).toBe(true);
    const b = await ensureServerTls(d, ['localhost', '127.0.0.1']);
    expect(b.issued).toBe(false);
    expect(b.caSha256).toBe(a.caSha256);
    const c = await ensureServerTls(d, ['localhost', '127.0.0.1', '192.0.2.7']);
    expect(c.issued).toBe(true);
    expect(c.caSha256).toBe(a.caSha256);
    const cert = new X509Certificate(c.serverCertPem);
    expect(cert.subjectAltName).toContain('IP Address:192.0.2.7');
    expect(cert.checkIssued(new X509Certificate(c.caCertPem))).toBe(true);
    expect(statSync(path.join(d, 'ca.key')).mode & 0o777).toBe(0o600);
  });

  it('adopts the token of a rotation cut between admin.yaml and the hash, and no other mismatched token', async () => {
    const d = dir();
    const first = await ensureAdminCredentials(d, '127.0.0.1:1', 'CA');
    const adminYaml = path.join(d, 'admin.yaml');
    const hashFile = path.join(d, 'admin-token.sha256');
    // Cut short: admin.yaml rewritten with a new token, the hash still the old one.
    const old = readFileSync(hashFile, 'utf8');
    const rotated = await rotateAdminToken(d, '127.0.0.1:1', 'CA');
    writeFileSync(hashFile, old);
    utimesSync(hashFile, new Date(Date.now() - 60_000), new Date(Date.now() - 60_000));
    const again = await ensureAdminCredentials(d, '127.0.0.1:1', 'CA');
    expect(again).toMatchObject({ tokenHash: rotated.tokenHash, recovered: true });
    expect(again.tokenHash).not.toBe(first.tokenHash);
    expect(readFileSync(hashFile, 'utf8').trim()).toBe(rotated.tokenHash);

    // A hash newer than admin.yaml was not written by a rotation: admin.yaml's token is not trusted.
    writeFileSync(adminYaml, readFileSync(adminYaml, 'utf8').replace(/token: .*/, 'token: ospa_planted'));
    utimesSync(adminYaml, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    const kept = await ensureAdminCredentials(d, '127.0.0.1:1', 'CA');
    expect(kept.tokenHash).toBe(rotated.tokenHash);
    expect(kept.recovered).toBeUndefined();
  });
});
