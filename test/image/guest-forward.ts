import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Lets a QEMU guest on `-netdev user,restrict=on` reach one loopback TCP port of the host.
 *
 * Why not the usual 10.0.2.2: `restrict=on` drops every guest connection that no forward
 * rule names, the host alias included, and QEMU refuses a guestfwd rule on 10.0.2.2
 * itself ("Conflicting/invalid host:port"). Without restrict the guest could reach the
 * outside world (apt timers, the slirp DNS forwarder), which the tests must not do. So
 * the guest gets its own address inside the slirp network (10.0.2.100 by default) and a
 * `guestfwd=…-cmd:` rule: QEMU spawns the relay below per guest connection with the
 * connection on stdin/stdout, and the relay splices it to 127.0.0.1:PORT.
 */
export class GuestForward {
  private readonly relay: string;

  constructor(dir: string, readonly guestAddress = '10.0.2.100') {
    this.relay = join(dir, 'guest-relay.mjs');
    // stderr is the guest connection too (slirp dup2s the socket onto fds 0-2): the relay never writes to it.
    writeFileSync(this.relay, [
      "import { connect } from 'node:net';",
      "const s = connect(Number(process.argv[2]), '127.0.0.1');",
      'const done = () => process.exit(0);',
      "process.stdin.on('error', done); process.stdout.on('error', done); s.on('error', done); s.on('close', done);",
      "process.stdin.on('end', () => s.end());",
      'process.stdin.pipe(s); s.pipe(process.stdout);',
      '',
    ].join('\n'));
  }

  /** The `guestfwd=` option for one port: guest guestAddress:port reaches host 127.0.0.1:port. */
  option(port: number): string {
    if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`guest forward port: got ${port}, expected 1-65535`);
    return `guestfwd=tcp:${this.guestAddress}:${port}-cmd:${process.execPath} ${this.relay} ${port}`;
  }
}
