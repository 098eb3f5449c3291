import { createHash, X509Certificate } from 'node:crypto';
import { connect, type PeerCertificate, type DetailedPeerCertificate } from 'node:tls';

export interface PinnedCa {
  caPem: string;
  /** The name ospd's certificate must be checked against (its SAN), when the server was given by address. */
  serverName?: string;
}

function toPem(der: Buffer): string {
  return `-----BEGIN CERTIFICATE-----\n${der.toString('base64').match(/.{1,64}/g)!.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/**
 * Trust on a pinned hash, not on first use: connects without verification
 * only to read the presented chain, picks the certificate whose DER sha256
 * equals the pin from the kernel command line, checks that it really issued
 * the server certificate, and hands back its PEM. Every later connection
 * verifies normally against that CA alone.
 */
export function fetchPinnedCa(server: string, caSha256: string, timeoutMs: number): Promise<PinnedCa> {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(server)!;
  const host = m[1];
  const port = Number(m[2]);
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'], servername: /^[\d.:]+$/.test(host) ? undefined : host });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`${server}: no TLS handshake within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${server}: ${e.message}`));
    });
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      const leaf = sock.getPeerCertificate(true) as DetailedPeerCertificate;
      sock.end();
      const chain: PeerCertificate[] = [];
      for (let c: DetailedPeerCertificate | undefined = leaf; c?.raw && !chain.includes(c); c = c.issuerCertificate) chain.push(c);
      const ca = chain.find((c) => createHash('sha256').update(c.raw).digest('hex') === caSha256);
      if (!ca) {
        reject(new Error(`${server}: no certificate in the presented chain (${chain.length}) has the pinned sha256 ${caSha256}; refusing to trust this server`));
        return;
      }
      const leafX = new X509Certificate(leaf.raw);
      const caX = new X509Certificate(ca.raw);
      if (!leafX.checkIssued(caX) || !leafX.verify(caX.publicKey)) {
        reject(new Error(`${server}: the pinned CA did not sign the server certificate; refusing to trust this server`));
        return;
      }
      const san = leafX.subjectAltName ?? '';
      const names = san.split(/,\s*/).map((s) => s.replace(/^(DNS|IP Address):/, ''));
      resolve({ caPem: toPem(ca.raw), serverName: names.includes(host) ? undefined : names[0] });
    });
  });
}
