/**
 * A network namespace joined to this machine by a veth pair, for browser tests whose fault is the whole
 * network going away: ICE and signaling at once, as when a laptop loses Wi-Fi or a phone moves to
 * cellular. The host side of the pair is `.1` of a private /24 that nothing else here uses; the
 * namespace side is `.2` with its default route through `.1`, so everything served on the host address
 * (the app, coturn) is reachable from inside and nothing else is. Needs root for `ip netns`.
 *
 * What Chromium inside makes of it (Debian's Chromium 156, measured with test/e2e/netns-fault.test.ts):
 * - `linkDown()` fires `offline` 10–20 ms later and `linkUp()` fires `online` as fast: Chromium's netlink
 *   watcher sees the namespace's own links, so nothing needs emulating.
 * - A link that is down takes the namespace's routes with it, so a new request fails within 10 ms. An
 *   open TCP stream (an EventSource was measured; a WebSocket is TCP too) is neither closed nor errored:
 *   it stalls. After a 3 s outage it resumes at once; after 6 s it resumes only with the server's next
 *   retransmission, which has backed off by then (within a second of `linkUp()` in 1 of 6 runs). Only
 *   the two ends' own timeouts end it.
 * - WebRTC: connectionState `disconnected` about 6 s after `linkDown()` and `failed` 10 s later. Traffic
 *   back within about 3 s heals by itself (media again about 0.3 s after `linkUp()`); an ICE restart
 *   after `linkUp()` has media again in about 0.5 s, whether or not the connection had failed.
 * - `changeAddress()` fires neither event (the link stays up) and new requests leave from the new
 *   address at once, but media stops: the relay allocation belongs to the old address. An ICE restart
 *   started right after the change takes about 1.7 s to gather, apparently because Chromium's own list
 *   of addresses lags the change; started 3 s later it gathers in under 0.1 s.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const NAMESPACE_PREFIX = 'cc-e2e-';
// Addresses are picked in 10.200.0.0–10.254.255.0, far from the 10.0.x.y ranges routers and VPNs favour.
const SUBNET_FIRST_OCTET = 10;
const SUBNET_SECOND_OCTETS = { min: 200, max: 254 };
const COMMAND_TIMEOUT_MS = 5_000;
const LINK_WAIT_MS = 2_000;

async function ip(...args: string[]): Promise<string> {
  const { stdout } = await run('ip', args, { timeout: COMMAND_TIMEOUT_MS });
  return stdout;
}

/** Why namespaces cannot be made here, or null when they can. */
export function netnsUnavailableReason(): string | null {
  if (process.getuid?.() !== 0) return 'network namespaces need root (ip netns add); run the suite as root';
  try {
    execFileSync('ip', ['netns', 'list'], { timeout: COMMAND_TIMEOUT_MS, stdio: 'ignore' });
    return null;
  } catch {
    return '`ip` from iproute2 is missing or cannot list network namespaces (apt-get install -y iproute2)';
  }
}

const toInt = (address: string) => address.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);

const overlaps = (a: string, aBits: number, b: string, bBits: number): boolean => {
  const bits = Math.min(aBits, bBits);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((toInt(a) & mask) >>> 0) === ((toInt(b) & mask) >>> 0);
};

/** Every IPv4 prefix this machine already has an address or a route in, whoever made it. */
async function prefixesInUse(): Promise<{ address: string; bits: number }[]> {
  const addresses = JSON.parse(await ip('-j', '-4', 'addr', 'show')) as { addr_info?: { local: string; prefixlen: number }[] }[];
  const routes = JSON.parse(await ip('-j', '-4', 'route', 'show', 'table', 'all')) as { dst: string }[];
  const used = addresses.flatMap((link) => (link.addr_info ?? []).map((info) => ({ address: info.local, bits: info.prefixlen })));
  for (const route of routes) {
    if (route.dst === 'default') continue;
    const [address, bits] = route.dst.split('/');
    if (address && /^\d+\.\d+\.\d+\.\d+$/.test(address)) used.push({ address, bits: bits ? Number(bits) : 32 });
  }
  return used;
}

async function freeSubnet(): Promise<string> {
  const used = await prefixesInUse();
  for (let tries = 0; tries < 100; tries++) {
    const second = SUBNET_SECOND_OCTETS.min + Math.floor(Math.random() * (SUBNET_SECOND_OCTETS.max - SUBNET_SECOND_OCTETS.min + 1));
    const base = `${SUBNET_FIRST_OCTET}.${second}.${Math.floor(Math.random() * 256)}`;
    if (!used.some((prefix) => overlaps(`${base}.0`, 24, prefix.address, prefix.bits))) return base;
  }
  throw new Error('no free 10.x.y.0/24 for a test network namespace');
}

// Names carry the creating process's id, so a later run can tell a crashed run's leftovers from a live
// run's namespace. Interface names are limited to 15 bytes, hence the short id on the veths.
const namespaceName = (id: string) => `${NAMESPACE_PREFIX}${id}-p${process.pid}`;
const parseNamespace = (name: string) => new RegExp(`^${NAMESPACE_PREFIX}([0-9a-f]{6})-p(\\d+)$`).exec(name);
const vethName = (id: string, side: 'h' | 'g') => `${NAMESPACE_PREFIX}${id}${side}`;

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

async function namespaces(): Promise<string[]> {
  return (await ip('netns', 'list')).split('\n').map((line) => line.split(' ')[0] ?? '').filter(Boolean);
}

/**
 * A namespace outlives the processes in it only while something holds it open, and an orphaned
 * Chromium from a crashed run would; every process in one of ours was started by a test run.
 */
function killProcessesIn(name: string): void {
  try {
    const pids = execFileSync('ip', ['netns', 'pids', name], { timeout: COMMAND_TIMEOUT_MS, encoding: 'utf8' });
    for (const pid of pids.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  } catch {
    // The namespace is gone already.
  }
}

/**
 * Deleting a namespace only unmounts its name: the kernel frees it, and its veth pair with it, once the
 * last reference goes, and a TCP socket still closing in it is one. So the host side, which carries the
 * host address, is deleted explicitly (that deletes its peer too).
 */
function deleteSync(name: string, hostVeth: string): void {
  killProcessesIn(name);
  for (const args of [['netns', 'delete', name], ['link', 'delete', hostVeth]]) {
    try {
      execFileSync('ip', args, { timeout: COMMAND_TIMEOUT_MS, stdio: 'ignore' });
    } catch {
      // Never made, or already gone with the namespace.
    }
  }
}

/** Removes namespaces and veths with our prefix whose creating process is gone (never a live run's). */
export async function removeStaleNamespaces(): Promise<string[]> {
  const removed: string[] = [];
  const live = new Set<string>();
  for (const name of await namespaces()) {
    const parsed = parseNamespace(name);
    if (!parsed) continue;
    if (alive(Number(parsed[2]))) {
      live.add(parsed[1]!);
      continue;
    }
    deleteSync(name, vethName(parsed[1]!, 'h'));
    removed.push(name);
  }
  const links = JSON.parse(await ip('-j', 'link', 'show')) as { ifname: string }[];
  for (const { ifname } of links) {
    const id = new RegExp(`^${NAMESPACE_PREFIX}([0-9a-f]{6})[hg]$`).exec(ifname)?.[1];
    // The namespace is made before its veths, so a veth whose namespace is gone is a crash's leftover.
    if (!id || live.has(id)) continue;
    // Deleting one end deletes its peer, so the second of a pair may already be gone.
    if (await ip('link', 'delete', ifname).then(() => true, () => false)) removed.push(ifname);
  }
  return removed;
}

const open = new Set<NetNamespace>();
let exitHooked = false;

/** A test that throws, a Ctrl-C or a SIGTERM from the runner must still take the namespace away. */
function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  const disposeAll = () => {
    for (const ns of open) ns.disposeSync();
  };
  process.once('exit', disposeAll);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = () => {
      disposeAll();
      // Listening replaced the default action; when nobody else handles the signal, die of it as before.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.once(signal, onSignal);
  }
}

export class NetNamespace {
  private disposed = false;
  private address: string;

  private constructor(
    readonly name: string,
    readonly hostInterface: string,
    readonly guestInterface: string,
    private readonly subnet: string,
  ) {
    this.address = `${subnet}.2`;
  }

  static async create(): Promise<NetNamespace> {
    const unavailable = netnsUnavailableReason();
    if (unavailable) throw new Error(unavailable);
    await removeStaleNamespaces();
    const id = randomBytes(3).toString('hex');
    const ns = new NetNamespace(namespaceName(id), vethName(id, 'h'), vethName(id, 'g'), await freeSubnet());
    open.add(ns);
    hookExit();
    try {
      await ns.setUp();
    } catch (error) {
      await ns.dispose();
      throw error;
    }
    return ns;
  }

  get hostAddress(): string {
    return `${this.subnet}.1`;
  }

  get guestAddress(): string {
    return this.address;
  }

  /** The IPv4 addresses the namespace's side of the link has now. */
  async addresses(): Promise<string[]> {
    const [link] = JSON.parse(await this.inside('-j', '-4', 'addr', 'show', 'dev', this.guestInterface)) as { addr_info?: { local: string }[] }[];
    return (link?.addr_info ?? []).map((info) => info.local);
  }

  /** Runs `ip` inside the namespace. */
  inside(...args: string[]): Promise<string> {
    return ip('-n', this.name, ...args);
  }

  private async setUp(): Promise<void> {
    await ip('netns', 'add', this.name);
    await ip('link', 'add', this.hostInterface, 'type', 'veth', 'peer', 'name', this.guestInterface);
    await ip('link', 'set', this.guestInterface, 'netns', this.name);
    await ip('addr', 'add', `${this.hostAddress}/24`, 'dev', this.hostInterface);
    await ip('link', 'set', this.hostInterface, 'up');
    // Without it, deleting the first address of the /24 deletes every later one too, and
    // changeAddress() would leave the namespace with none.
    await run('ip', ['netns', 'exec', this.name, 'sysctl', '-qw', `net.ipv4.conf.${this.guestInterface}.promote_secondaries=1`], {
      timeout: COMMAND_TIMEOUT_MS,
    });
    await this.inside('addr', 'add', `${this.address}/24`, 'dev', this.guestInterface);
    await this.inside('link', 'set', 'lo', 'up');
    await this.linkUp();
  }

  private async waitForLink(up: boolean): Promise<void> {
    const deadline = Date.now() + LINK_WAIT_MS;
    for (;;) {
      const [link] = JSON.parse(await this.inside('-j', 'link', 'show', 'dev', this.guestInterface)) as { flags: string[] }[];
      if ((link?.flags.includes('LOWER_UP') ?? false) === up) return;
      if (Date.now() > deadline) throw new Error(`${this.guestInterface} in ${this.name} did not go ${up ? 'up' : 'down'} within ${LINK_WAIT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** The cable pulled: the namespace loses its link and, with it, every route out. */
  async linkDown(): Promise<void> {
    await this.inside('link', 'set', this.guestInterface, 'down');
    await this.waitForLink(false);
  }

  async linkUp(): Promise<void> {
    await this.inside('link', 'set', this.guestInterface, 'up');
    await this.waitForLink(true);
    // The kernel drops the default route with the link and does not bring it back.
    await this.inside('route', 'replace', 'default', 'via', this.hostAddress, 'src', this.address);
  }

  /**
   * Wi-Fi to cellular: a new address, the default route moved to it, the old one removed. The new one
   * is in place before the old one goes, so the namespace is never without a way out.
   */
  async changeAddress(): Promise<string> {
    const taken = new Set([this.hostAddress, this.address]);
    let next = 3;
    while (taken.has(`${this.subnet}.${next}`)) next++;
    if (next > 254) throw new Error(`no address left in ${this.subnet}.0/24`);
    const previous = this.address;
    this.address = `${this.subnet}.${next}`;
    await this.inside('addr', 'add', `${this.address}/24`, 'dev', this.guestInterface);
    await this.inside('route', 'replace', 'default', 'via', this.hostAddress, 'src', this.address);
    await this.inside('addr', 'del', `${previous}/24`, 'dev', this.guestInterface);
    return this.address;
  }

  async dispose(): Promise<void> {
    this.disposeSync();
  }

  /** Synchronous so that it can run from a process 'exit' handler. */
  disposeSync(): void {
    if (this.disposed) return;
    this.disposed = true;
    open.delete(this);
    deleteSync(this.name, this.hostInterface);
  }
}
