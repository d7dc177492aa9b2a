/**
 * A TCP hop on loopback between a client and the server that can go silent: after `cut()` it forwards
 * nothing in either direction and closes nothing, so both ends keep an open connection to a peer that
 * never answers, as when a laptop sleeps or a Wi-Fi link drops without a FIN. The server learns of it only
 * from its own liveness checks.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

// An Engine.IO ping on a WebSocket: one unmasked text frame (server to client), payload "2".
const PING_FRAME = Buffer.from([0x81, 0x01, 0x32]);

export class SilentProxy {
  private silent = false;
  private readonly sockets = new Set<Socket>();
  private pingWaiters: (() => void)[] = [];
  private readonly server: Server;
  /** Where the client connects instead of the server; set once listening. */
  url = '';

  private constructor(target: URL) {
    this.server = createServer((client) => this.pair(client, connect(Number(target.port), target.hostname)));
  }

  /** Listens on a free loopback port and passes every connection on to `target` (an http URL). */
  static async start(target: string): Promise<SilentProxy> {
    const proxy = new SilentProxy(new URL(target));
    const port = await new Promise<number>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve((proxy.server.address() as { port: number }).port));
    });
    proxy.url = `http://127.0.0.1:${String(port)}`;
    return proxy;
  }

  private pair(client: Socket, upstream: Socket): void {
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      // A silent path reports nothing, errors included: the ends must find out by themselves.
      socket.on('error', () => {});
    }
    const forward = (from: Socket, to: Socket, watch: boolean) => {
      from.on('data', (chunk: Buffer) => {
        if (this.silent) return;
        to.write(chunk);
        if (watch && chunk.includes(PING_FRAME)) for (const resolve of this.pingWaiters.splice(0)) resolve();
      });
      // Before the cut a closed end closes the other, as a working network would; after it, nothing does.
      from.once('end', () => {
        if (!this.silent) to.end();
      });
    };
    forward(client, upstream, false);
    forward(upstream, client, true);
  }

  /** Resolves once the server's next ping has passed through towards the client. */
  nextPing(): Promise<void> {
    return new Promise((resolve) => this.pingWaiters.push(resolve));
  }

  /** From now on every byte is dropped and no connection is closed. */
  cut(): void {
    this.silent = true;
  }

  close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}
