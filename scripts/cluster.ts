/**
 * `npm run cluster -- --nodes 3`: a local callchart cluster for development. Postgres and Redis in
 * temporary directories, N node processes, and Debian's haproxy in front of them on one port (PORT or
 * --port, 3000 by default), health-checking each node's /readyz. Ctrl-C stops everything it started and
 * removes the directories.
 */
import { createServer } from 'node:net';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadAgentsFile } from '../server/src/agents.ts';
import { startCluster, MAX_NODES, type Cluster } from '../test/support/cluster.ts';
import { haproxyBinary } from '../test/support/haproxy.ts';
import { requirePostgres } from '../test/support/postgres.ts';
import { requireRedisServer } from '../test/support/redis.ts';
import { buildApps } from './build-apps.ts';
import { repoRoot } from './repoRoot.ts';

const USAGE = `usage: npm run cluster -- [--nodes N] [--port PORT]
  --nodes N     how many nodes, 1 to ${String(MAX_NODES)} (default 3)
  --port PORT   the one port to open, on 127.0.0.1 (default: PORT, else 3000)
Every other setting the nodes read from the environment as \`npm start\` does (LOG_LEVEL, ICE_SERVERS, …).`;

const REPEAT_SIGNAL_MS = 1_000;

class UsageError extends Error {}

function wholeNumber(text: string, name: string, min: number, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new UsageError(`${name} must be a whole number from ${String(min)} to ${String(max)}, not ${JSON.stringify(text)}`);
  }
  return Number(text);
}

function readArguments(argv: string[]): { nodes: number; port: number } | 'help' {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { nodes: { type: 'string' }, port: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
  if (parsed.values.help) return 'help';
  const port = parsed.values.port ?? process.env.PORT;
  return {
    nodes: wholeNumber(parsed.values.nodes ?? '3', '--nodes', 1, MAX_NODES),
    port: port === undefined || port === '' ? 3_000 : wholeNumber(port, parsed.values.port === undefined ? 'PORT' : '--port', 1, 65_535),
  };
}

/** The Debian packages the cluster runs on, by the check each one's support module makes. */
function missingPackages(): string[] {
  const checks: [name: string, check: () => unknown][] = [
    ['postgresql', requirePostgres],
    ['redis-server', requireRedisServer],
    ['haproxy', haproxyBinary],
  ];
  return checks.filter(([, check]) => {
    try {
      check();
      return false;
    } catch {
      return true;
    }
  }).map(([name]) => name);
}

/** Fails before anything starts, rather than after Postgres, Redis and the nodes are up. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

function describe(cluster: Cluster, agentsFile: string): string {
  const lines = [
    '',
    `callchart cluster: ${String(cluster.nodes.length)} node${cluster.nodes.length === 1 ? '' : 's'} behind haproxy`,
    '',
    `  open ${cluster.url}/`,
    `    ${cluster.url}/         the demo page with the visitor widget`,
    `    ${cluster.url}/agent    the agent dashboard`,
    `    ${cluster.url}/inspect  the live inspector`,
    '',
    `  demo logins (${path.relative(repoRoot, agentsFile) || agentsFile}):`,
    ...loadAgentsFile(agentsFile).map((agent) => `    ${agent.email.padEnd(26)} ${agent.password.padEnd(18)} ${agent.roles.join(', ')}`),
    '',
    '  nodes:',
    ...cluster.nodes.map((node) => `    ${node.name.padEnd(8)} ${node.url}  NODE_ID=${node.nodeId}  log ${node.logFile}`),
    `  Postgres ${cluster.postgres.url}`,
    `  Redis    ${cluster.redis.url}`,
    '',
    'Ctrl-C stops everything and removes the temporary directories (and the logs in them).',
  ];
  return lines.join('\n');
}

async function main(): Promise<number> {
  let options;
  try {
    options = readArguments(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`callchart: ${error.message}\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    console.log(USAGE);
    return 0;
  }
  const missing = missingPackages();
  if (missing.length > 0) {
    console.error(
      `callchart: the cluster needs Debian packages that are missing: ${missing.join(', ')}.\n` +
        'Install them with `bash scripts/ensure-system-packages.sh` (as root it installs what scripts/system-packages.txt lists,\n' +
        `otherwise it prints the apt-get command), or: apt-get install -y --no-install-recommends ${missing.join(' ')}`,
    );
    return 1;
  }
  if (!(await portIsFree(options.port))) {
    console.error(`callchart: port ${String(options.port)} on 127.0.0.1 is in use; choose another with --port or PORT`);
    return 1;
  }

  await buildApps({ onlyStale: true });

  // A stop asked for while the cluster is still starting waits for the start to finish (or fail) first.
  let starting: Promise<Cluster> | null = null;
  let cluster: Cluster | null = null;
  let stopping: Promise<number> | null = null;
  let stopAskedAt = 0;
  const stop = (signal: NodeJS.Signals): Promise<number> => {
    if (stopping) {
      // One Ctrl-C arrives more than once (from the terminal to the whole process group, and relayed by
      // npm and tsx), so only a signal well after the first means a person asking again.
      if (Date.now() - stopAskedAt > REPEAT_SIGNAL_MS) {
        console.error(`callchart: ${signal} again; leaving at once (what is still running is killed)`);
        process.exit(130);
      }
      return stopping;
    }
    stopAskedAt = Date.now();
    console.log(`\ncallchart: ${signal}: stopping the cluster…`);
    stopping = (async () => {
      await starting?.catch(() => undefined);
      await cluster?.stop();
      console.log('callchart: stopped');
      return 0;
    })();
    return stopping;
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      void stop(signal).then(
        (code) => process.exit(code),
        (error: unknown) => {
          console.error('callchart: stopping failed:', error);
          process.exit(1);
        },
      );
    });
  }

  const agentsFile = process.env.AGENTS_FILE ? path.resolve(process.env.AGENTS_FILE) : path.join(repoRoot, 'server/config/agents.json');
  starting = startCluster({
    nodes: options.nodes,
    fast: false,
    balancer: { port: options.port },
    // haproxy, on loopback, names each client in X-Forwarded-For: the nodes count limits by that address.
    env: { AGENTS_FILE: agentsFile, TRUST_PROXY: '127.0.0.1' },
    progress: (line) => console.log(`callchart: ${line}`),
  });
  try {
    cluster = await starting;
  } catch (error) {
    if (stopping) return stopping;
    console.error(`callchart: the cluster did not start: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  if (stopping) return stopping;
  console.log(describe(cluster, agentsFile));
  for (const node of cluster.nodes) {
    node.child.once('exit', (code, signal) => {
      if (!stopping) console.error(`callchart: ${node.name} (${node.nodeId}) exited (${String(code ?? signal)}); the others go on. Its log: ${node.logFile}`);
    });
  }
  // Runs until a signal stops it.
  return new Promise<number>(() => {});
}

process.exit(await main());
