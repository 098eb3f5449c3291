// @peculiar/x509 resolves its ASN.1 schemas through tsyringe, which needs this polyfill loaded first.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto, createHash, X509Certificate as NodeX509 } from 'node:crypto';
import { isIP } from 'node:net';
import path from 'node:path';
import { readIfExists, writeFileAtomic } from '../../common/files.js';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const CA_YEARS = 10;
const SERVER_DAYS = 825; // the longest validity TLS clients commonly accept

export interface TlsMaterial {
  caCertPem: string;
  serverCertPem: string;
  serverKeyPem: string;
  /** sha256 of the CA certificate's DER, hex: what agents pin. */
  caSha256: string;
}

export interface KeyedCert {
  certPem: string;
  keyPem: string;
}

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

async function exportKey(key: CryptoKey): Promise<string> {
  return pem('PRIVATE KEY', await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey));
}

async function importKey(keyPem: string): Promise<CryptoKey> {
  const der = Buffer.from(keyPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  return (await webcrypto.subtle.importKey('pkcs8', der, ALG, true, ['sign'])) as unknown as CryptoKey;
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex').replace(/^[89a-f]/, '1');
}

export async function createCa(commonName: string): Promise<KeyedCert> {
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + CA_YEARS * 365 * 86_400_000);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}`,
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await exportKey(keys.privateKey) };
}

/** Issues a leaf certificate; server leaves get serverAuth, client leaves clientAuth. */
export async function issueLeaf(
  ca: KeyedCert,
  commonName: string,
  sans: string[],
  usage: 'server' | 'client' = 'server',
): Promise<KeyedCert> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const caKey = await importKey(ca.keyPem);
  const keys = (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  const notBefore = new Date(Date.now() - 60_000);
  const names = [...new Set(sans)].map((v) => ({ type: isIP(v) ? ('ip' as const) : ('dns' as const), value: v }));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${commonName}`,
    issuer: caCert.subject,
    notBefore,
    notAfter: new Date(notBefore.getTime() + SERVER_DAYS * 86_400_000),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  return { certPem: cert.toString('pem') + '\n', keyPem: await exportKey(keys.privateKey) };
}

export function certSha256(certPem: string): string {
  return createHash('sha256').update(new NodeX509(certPem).raw).digest('hex');
}

function sansOf(certPem: string): Set<string> {
  const alt = new NodeX509(certPem).subjectAltName ?? '';
  return new Set(alt.split(/,\s*/).map((s) => s.replace(/^(DNS|IP Address):/, '')).filter(Boolean));
}

/**
 * The data directory's CA and server certificate: created on first start,
 * reused afterwards, and the server certificate reissued (same CA) when the
 * wanted names are not all in it or it nears expiry, so a new
 * --advertise-address does not break agents that pinned the CA.
 */
export async function ensureServerTls(dataDir: string, wantedSans: string[]): Promise<TlsMaterial & { issued: boolean }> {
  const f = (n: string) => path.join(dataDir, n);
  let caCertPem = (await readIfExists(f('ca.crt')))?.toString();
  let caKeyPem = (await readIfExists(f('ca.key')))?.toString();
  if (!caCertPem || !caKeyPem) {
    const ca = await createCa('osp undercloud CA');
    await writeFileAtomic(f('ca.key'), ca.keyPem, 0o600);
    await writeFileAtomic(f('ca.crt'), ca.certPem, 0o644);
    caCertPem = ca.certPem;
    caKeyPem = ca.keyPem;
  }
  let serverCertPem = (await readIfExists(f('server.crt')))?.toString();
  let serverKeyPem = (await readIfExists(f('server.key')))?.toString();
  let issued = false;
  const stale = (() => {
    if (!serverCertPem || !serverKeyPem) return true;
    const have = sansOf(serverCertPem);
    if (!wantedSans.every((s) => have.has(s))) return true;
    const cert = new NodeX509(serverCertPem);
    if (!cert.checkIssued(new NodeX509(caCertPem))) return true;
    return new Date(cert.validTo).getTime() - Date.now() < 30 * 86_400_000;
  })();
  if (stale) {
    const leaf = await issueLeaf({ certPem: caCertPem, keyPem: caKeyPem }, 'ospd', wantedSans, 'server');
    await writeFileAtomic(f('server.key'), leaf.keyPem, 0o600);
    await writeFileAtomic(f('server.crt'), leaf.certPem, 0o644);
    serverCertPem = leaf.certPem;
    serverKeyPem = leaf.keyPem;
    issued = true;
  }
  return { caCertPem, serverCertPem: serverCertPem!, serverKeyPem: serverKeyPem!, caSha256: certSha256(caCertPem), issued };
}
