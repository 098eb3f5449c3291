import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';
import { WebSocketServer, createWebSocketStream, type RawData, type WebSocket } from 'ws';
import type { Logger } from '../../common/logging.js';

/** The one path the WebSocket listener answers on, as mosquitto and most browser clients use. */
export const MQTT_WS_PATH = '/mqtt';

/**
 * MQTT 3.1.1 section 6 and MQTT 5 section 6: the client offers "mqtt" and the
 * server returns it [MQTT-6.0.0-3, MQTT-6.0.0-4]. "mqttv3.1" is what MQTT 3.1
 * clients (and mqtt.js in 3.1 mode) offer; mosquitto accepts it too, so we do.
 */
export const MQTT_WS_PROTOCOLS = ['mqtt', 'mqttv3.1'] as const;

export interface MqttWebSocketOptions {
  certPem: string | Buffer;
  keyPem: string | Buffer;
  caPem?: string | Buffer;
  /** Largest WebSocket message accepted; a bigger one closes the connection with 1009 (RFC 6455 section 7.4.1). */
  maxMessageBytes: number;
  /** The same high water mark as the TCP listeners, so the broker's slow-consumer check works alike. */
  highWaterMark: number;
  /** Hands the MQTT byte stream to the broker (aedes' `handle`). */
  handle: (stream: Duplex, req: IncomingMessage) => void;
  log: Logger;
}

/** The listener, and how to end every WebSocket it upgraded. */
export interface MqttWebSocketListener {
  server: HttpsServer;
  /** Sends 1001 Going Away to every client and waits (at most `graceMs`) for the closing handshakes. */
  closeClients(graceMs: number): Promise<void>;
}

/** Offered subprotocols, from a header that may repeat (Node joins repeats with ", "). */
function offeredProtocols(req: IncomingMessage): string[] {
  return (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean);
}

/** "mqtt" wins when both are offered, because [MQTT-6.0.0-4] says the server returns "mqtt". */
function chooseProtocol(offered: Iterable<string>): string | null {
  const set = new Set(offered);
  return MQTT_WS_PROTOCOLS.find((p) => set.has(p)) ?? null;
}

function pathOf(req: IncomingMessage): string {
  const url = req.url ?? '';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 404: 'Not Found', 426: 'Upgrade Required' };

/** An upgrade we refuse never becomes a WebSocket: answer in plain HTTP/1.1 on the raw socket and close it. */
function refuseUpgrade(socket: Duplex, status: number, body: string): void {
  const text = `${body}\n`;
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${REASONS[status]}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n`
      + `Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`,
  );
}

function plainAnswer(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', connection: 'close', ...headers });
  res.end(`${body}\n`);
}

/**
 * MQTT over WebSocket (WSS only) on `MQTT_WS_PATH`, feeding the same aedes
 * instance as the TCP listeners so authentication and ACLs are unchanged.
 */
export function createMqttWebSocketListener(opts: MqttWebSocketOptions): MqttWebSocketListener {
  const { log } = opts;
  const server = createHttpsServer({
    cert: opts.certPem, key: opts.keyPem, ca: opts.caPem, minVersion: 'TLSv1.2', highWaterMark: opts.highWaterMark,
    // A handshake that never completes must not hold a socket; once upgraded,
    // aedes' own connect timeout and keepalive take over.
    headersTimeout: 30_000, requestTimeout: 30_000,
  }, (req, res) => {
    if (pathOf(req) === MQTT_WS_PATH) {
      // RFC 9110 section 15.5.22: a 426 names the protocol to switch to.
      plainAnswer(res, 426, `MQTT over WebSocket: connect to wss://HOST:PORT${MQTT_WS_PATH} with a WebSocket client offering the 'mqtt' subprotocol`, { upgrade: 'websocket' });
    } else {
      plainAnswer(res, 404, `not found: MQTT over WebSocket is served at ${MQTT_WS_PATH} only`);
    }
  });

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxMessageBytes,
    // Compression would let a small frame inflate to maxPayload and costs memory per connection; MQTT clients do not need it.
    perMessageDeflate: false,
    handleProtocols: (offered) => chooseProtocol(offered) ?? false,
  });

  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', (err) => log.debug({ err: err.message }, 'mqtt websocket handshake socket error'));
    if (pathOf(req) !== MQTT_WS_PATH) return refuseUpgrade(socket, 404, `not found: MQTT over WebSocket is served at ${MQTT_WS_PATH} only`);
    // MQTT 3.1.1 section 6 [MQTT-6.0.0-3]: without the subprotocol this is not an MQTT client.
    if (!chooseProtocol(offeredProtocols(req))) {
      return refuseUpgrade(socket, 400, `expected the WebSocket subprotocol 'mqtt' in Sec-WebSocket-Protocol (MQTT 3.1.1 section 6); offered: ${JSON.stringify(req.headers['sec-websocket-protocol'] ?? '')}`);
    }
    // ws checks the rest of RFC 6455 section 4.2.1 (method, version, key) and answers 400/405 itself.
    wss.handleUpgrade(req, socket, head, (ws) => attach(ws, req));
  });

  const attach = (ws: WebSocket, req: IncomingMessage): void => {
    const stream = createWebSocketStream(ws, {
      highWaterMark: opts.highWaterMark,
      // mqtt-packet writes a packet in several small pieces (corked); without
      // writev each piece would become its own WebSocket frame and TLS record.
      // One frame may carry several or partial packets (MQTT 3.1.1 section 6, [MQTT-6.0.0-2]).
      writev: (chunks: { chunk: Buffer }[], callback: (err?: Error | null) => void) => ws.send(Buffer.concat(chunks.map((c) => c.chunk)), callback),
    });
    // createWebSocketStream forwards text and binary messages alike. MQTT 3.1.1
    // section 6 [MQTT-6.0.0-1]: packets travel in binary frames only, and any
    // other data frame closes the connection; so its listener only sees binary
    // ones, and nothing reaches the broker once a text frame arrived.
    const forward = ws.listeners('message') as ((data: RawData, isBinary: boolean) => void)[];
    ws.removeAllListeners('message');
    let refused = false;
    ws.on('message', (data: RawData, isBinary: boolean) => {
      if (refused) return;
      if (isBinary) {
        for (const f of forward) f(data, isBinary);
        return;
      }
      refused = true;
      log.debug({ remote: req.socket.remoteAddress }, 'mqtt websocket text frame; closing');
      // RFC 6455 section 7.4.1: 1003 is "received a type of data it cannot accept".
      ws.close(1003, 'MQTT over WebSocket takes binary frames only');
    });
    stream.on('error', (err) => log.debug({ err: err.message }, 'mqtt websocket stream error'));
    opts.handle(stream, req);
  };

  return {
    server,
    closeClients: async (graceMs) => {
      const open = [...wss.clients];
      const closed = open.map((ws) => new Promise<void>((resolve) => {
        if (ws.readyState === ws.CLOSED) return resolve();
        ws.once('close', () => resolve());
        // RFC 6455 section 7.4.1: 1001 is "going away", e.g. a server going down.
        ws.close(1001, 'ospd stopping');
      }));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.all(closed), new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      for (const ws of open) if (ws.readyState !== ws.CLOSED) ws.terminate();
      wss.close();
      server.closeAllConnections();
    },
  };
}
