/**
 * A relay-only TURN server (Debian's coturn) on 127.0.0.1 (or another local address, such as the host
 * side of a test network namespace), for browser tests whose ICE fault must be real.
 * With `iceTransportPolicy: 'relay'` every media path runs through this process, so SIGKILLing it breaks
 * ICE the way a lost network path does, and starting it again on the same ports lets an ICE restart recover.
 *
 * By default it takes ephemeral credentials only (`use-auth-secret`), as production should: the server
 * under test is given TURN_SECRET and mints them per call. `auth: 'static'` gives the one fixed user of
 * static ICE_SERVERS instead.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TurnRestConfig } from '../../server/src/config.ts';
import { mintTurnServer } from '../../server/src/turnCredentials.ts';

export const TURNSERVER_PATH = '/usr/bin/turnserver';
export const TURN_USER = { username: 'test', credential: 'test' } as const;
const TURN_REALM = 'callchart';
// What the test side mints for its own peers (the fault tests' bare RTCPeerConnections): longer than any test.
const TEST_CREDENTIAL_MS = 3_600_000;

export type TurnAuth = 'secret' | 'static';
const RELAY_PORT_COUNT = 40;

export interface IceServerConfig {
  urls: string;
  username: string;
  credential: string;
}

export function requireTurnserver(): void {
  if (!existsSync(TURNSERVER_PATH)) {
    throw new Error(
      `coturn is not installed (${TURNSERVER_PATH} is missing). The browser suite needs it for its real ICE ` +
        'faults; `npm test` installs it with apt-get (apt-get install -y coturn).',
    );
  }
}

function udpPortFree(port: number, address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    socket.once('error', () => resolve(false));
    socket.bind(port, address, () => socket.close(() => resolve(true)));
  });
}

function tcpPortFree(port: number, address: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, address, () => probe.close(() => resolve(true)));
  });
}

/** coturn listens on UDP and TCP; both must be free or it starts half-working without saying so. */
async function freeListeningPort(address: string): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    if ((await udpPortFree(port, address)) && (await tcpPortFree(port, address))) return port;
  }
  throw new Error('no free port for the TURN listener');
}

/**
 * A window of relay ports that nothing else holds, drawn from above the kernel's usual ephemeral range
 * start so that parallel runs (each with its own window) rarely collide.
 */
async function freeRelayRange(address: string): Promise<{ min: number; max: number }> {
  for (let tries = 0; tries < 50; tries++) {
    const min = 30_000 + Math.floor(Math.random() * 2_500) * 10;
    const max = min + RELAY_PORT_COUNT - 1;
    let free = true;
    for (let port = min; port <= max && free; port++) free = await udpPortFree(port, address);
    if (free) return { min, max };
  }
  throw new Error('no free range of relay ports for the TURN server');
}

/** Resolves once the server answers a STUN Binding request, i.e. it is really serving, not just started. */
async function waitForStun(address: string, port: number, deadline: number, exited: () => string | null): Promise<void> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, address, resolve));
  try {
    for (;;) {
      const why = exited();
      if (why) throw new Error(why);
      if (Date.now() > deadline) throw new Error(`the TURN server on ${address}:${port} did not answer STUN`);
      const request = Buffer.alloc(20);
      request.writeUInt16BE(0x0001, 0);
      request.writeUInt16BE(0, 2);
      request.writeUInt32BE(0x2112a442, 4);
      randomBytes(12).copy(request, 8);
      const answered = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          socket.off('message', onMessage);
          resolve(false);
        }, 100);
        const onMessage = (message: Buffer) => {
          if (message.length >= 20 && message.subarray(8, 20).equals(request.subarray(8, 20))) {
            clearTimeout(timer);
            socket.off('message', onMessage);
            resolve(true);
          }
        };
        socket.on('message', onMessage);
        socket.send(request, port, address);
      });
      if (answered) return;
    }
  } finally {
    socket.close();
  }
}

export class TurnServer {
  private child: ChildProcess | null = null;
  private log = '';
  private readonly dir = mkdtempSync(path.join(tmpdir(), 'callchart-turn-'));
  /** coturn's `static-auth-secret`, which the server under test gets as TURN_SECRET. */
  readonly secret = randomBytes(32).toString('base64url');

  private constructor(
    readonly listeningIp: string,
    readonly port: number,
    readonly relayPorts: { min: number; max: number },
    readonly auth: TurnAuth,
  ) {}

  /**
   * Picks free ports once; `restart()` reuses them, as a relay coming back at the same address would.
   * It listens and relays on `listeningIp` alone, so its peers must reach that address.
   */
  static async create({ listeningIp = '127.0.0.1', auth = 'secret' }: { listeningIp?: string; auth?: TurnAuth } = {}): Promise<TurnServer> {
    requireTurnserver();
    return new TurnServer(listeningIp, await freeListeningPort(listeningIp), await freeRelayRange(listeningIp), auth);
  }

  get url(): string {
    return `turn:${this.listeningIp}:${this.port}?transport=udp`;
  }

  /** The REST-scheme settings a callchart server mints this relay's credentials with. */
  restConfig(ttlSeconds = TEST_CREDENTIAL_MS / 1_000): TurnRestConfig {
    return { secret: this.secret, urls: [this.url], ttlSeconds };
  }

  /** Credentials expiring at `expiresAt` (ms), as the server would mint them; only for the secret mode. */
  mint(id: string, expiresAt: number): IceServerConfig {
    const { username, credential } = mintTurnServer(this.restConfig(), id, expiresAt);
    return { urls: this.url, username: username!, credential: credential! };
  }

  /** For a test's own peers: freshly minted credentials, or the static user. */
  get iceServers(): IceServerConfig[] {
    return [this.auth === 'secret' ? this.mint('test-peer', Date.now() + TEST_CREDENTIAL_MS) : { urls: this.url, ...TURN_USER }];
  }

  /** The server env that makes every client of a callchart server relay through this TURN server only. */
  get serverEnv(): Record<string, string> {
    const credentials: Record<string, string> =
      this.auth === 'secret' ? { TURN_SECRET: this.secret, TURN_URLS: this.url } : { ICE_SERVERS: JSON.stringify(this.iceServers) };
    return { ...credentials, ICE_TRANSPORT_POLICY: 'relay' };
  }

  get running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  output(): string {
    return this.log;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const child = spawn(
      TURNSERVER_PATH,
      [
        '-n',
        `--listening-ip=${this.listeningIp}`,
        `--relay-ip=${this.listeningIp}`,
        `--listening-port=${this.port}`,
        ...(this.auth === 'secret'
          ? ['--use-auth-secret', `--static-auth-secret=${this.secret}`]
          : ['--lt-cred-mech', `--user=${TURN_USER.username}:${TURN_USER.credential}`]),
        `--realm=${TURN_REALM}`,
        '--allow-loopback-peers',
        '--no-cli',
        '--no-tls',
        '--no-dtls',
        `--min-port=${this.relayPorts.min}`,
        `--max-port=${this.relayPorts.max}`,
        '--log-file=stdout',
        '--simple-log',
        // Each allocation with the user it was granted to: how a test sees whose credentials the relay took.
        '--verbose',
        // Its defaults live under /var and are shared, so two relays on one machine would fight over them.
        `--pidfile=${path.join(this.dir, 'turnserver.pid')}`,
        `--db=${path.join(this.dir, 'turndb')}`,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.child = child;
    child.stdout!.on('data', (chunk) => (this.log += chunk));
    child.stderr!.on('data', (chunk) => (this.log += chunk));
    const exited = () =>
      child.exitCode !== null || child.signalCode !== null
        ? `the TURN server exited at start (${String(child.exitCode ?? child.signalCode)}):\n${this.log.slice(-2_000)}`
        : null;
    try {
      await waitForStun(this.listeningIp, this.port, Date.now() + 10_000, exited);
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** SIGKILL: the relay vanishes mid-packet with no goodbye, which is the fault under test. */
  async stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
