/**
 * The SDK as someone outside the repository gets it: `@callchart/client` and `@callchart/machines` built
 * and packed with `npm pack`, installed from the tarballs into an empty project in the system's temp
 * directory, type-checked there with the repository's compiler, and run there in Node against the real
 * server.
 */
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSdk, pack, type Packed } from '../../scripts/build-sdk.ts';
import { repoRoot } from '../../scripts/repoRoot.ts';
import { agentToken, stored, visitorToken } from '../support/server.ts';
import { suiteServer } from '../support/suite-server.ts';

const run = promisify(execFile);
const tsc = path.join(repoRoot, 'node_modules/.bin/tsc');

let buildDir: string;
let work: string;
let project: string;
let packages: { machines: Packed; client: Packed };

beforeAll(async () => {
  // The build stays inside the repository, where the declarations it compiles against find xstate and zod.
  await mkdir(path.join(repoRoot, 'node_modules/.cache'), { recursive: true });
  buildDir = await mkdtemp(path.join(repoRoot, 'node_modules/.cache/callchart-sdk-'));
  work = await mkdtemp(path.join(tmpdir(), 'callchart-sdk-'));
  const built = await buildSdk({ outDir: buildDir });
  packages = { machines: await pack(built.machines, work), client: await pack(built.client, work) };

  project = path.join(work, 'consumer');
  await mkdir(path.join(project, 'src'), { recursive: true });
  await writeFile(path.join(project, 'package.json'), JSON.stringify({ name: 'sdk-consumer', private: true, type: 'module' }));
  // From the npm cache where it has them; the registry only for what it lacks.
  await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', packages.machines.tarball, packages.client.tarball], {
    cwd: project,
  });
  await copyFile(path.join(repoRoot, 'test/integration/sdk-consumer/call.ts'), path.join(project, 'src/call.ts'));
  await copyFile(path.join(repoRoot, 'apps/client/example/main.ts'), path.join(project, 'src/example.ts'));
}, 180_000);

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
  await rm(buildDir, { recursive: true, force: true });
});

/** The consumer project's own tsconfig, strict; with NodeNext it also emits what the Node test runs. */
async function typeCheck(resolution: 'NodeNext' | 'Bundler'): Promise<{ ok: boolean; output: string }> {
  const config = {
    compilerOptions: {
      target: 'ES2022',
      module: resolution === 'NodeNext' ? 'NodeNext' : 'ESNext',
      moduleResolution: resolution,
      lib: ['ES2023', 'DOM'],
      strict: true,
      noUncheckedIndexedAccess: true,
      // The installed declarations are checked too, the SDK's and those they import.
      skipLibCheck: false,
      types: ['node'],
      typeRoots: [path.join(repoRoot, 'node_modules/@types')],
      rootDir: 'src',
      outDir: 'out',
      noEmit: resolution !== 'NodeNext',
    },
    include: ['src'],
  };
  const file = path.join(project, `tsconfig.${resolution}.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  return run(tsc, ['-p', file], { cwd: project }).then(
    () => ({ ok: true, output: '' }),
    (error: { stdout?: string }) => ({ ok: false, output: error.stdout ?? String(error) }),
  );
}

let compiled: Promise<{ ok: boolean; output: string }> | null = null;
/** The NodeNext check, run once for both the test that checks it and the test that runs its output. */
const compileOnce = () => (compiled ??= typeCheck('NodeNext'));

const manifest = async (name: string) => JSON.parse(await readFile(path.join(project, 'node_modules', name, 'package.json'), 'utf8')) as Record<string, unknown>;

describe('the SDK as a published package', () => {
  it('packs only the built modules, their declarations, the README and the license, with a manifest that points at them', async () => {
    for (const packed of [packages.machines, packages.client]) {
      const files = packed.files.map((file) => file.path);
      expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'LICENSE', 'index.js', 'index.d.ts']));
      expect(files.filter((file) => !/\.(js|d\.ts)$/.test(file)).sort()).toEqual(['LICENSE', 'README.md', 'package.json']);
      expect(files.filter((file) => /test|fixture/i.test(file))).toEqual([]);
      // Every module has its declarations, and the declarations import what the JavaScript imports.
      for (const js of files.filter((file) => file.endsWith('.js'))) expect(files).toContain(js.replace(/\.js$/, '.d.ts'));
    }
    expect(packages.client.files.map((file) => file.path)).toEqual(expect.arrayContaining(['visitorClient.js', 'agentClient.js', 'events.js']));

    for (const name of ['@callchart/machines', '@callchart/client']) {
      const installed = await manifest(name);
      expect(installed).toMatchObject({ name, license: 'MIT', type: 'module', sideEffects: false, types: './index.d.ts' });
      expect(installed).not.toHaveProperty('private');
      expect(installed).not.toHaveProperty('devDependencies');
      expect(installed.exports).toMatchObject({ '.': { types: './index.d.ts', import: './index.js' } });
      expect(installed.files).toEqual(expect.any(Array));
    }
    const client = await manifest('@callchart/client');
    expect(client.dependencies).toEqual({
      '@callchart/machines': '0.1.0',
      '@statelyai/inspect': expect.any(String),
      'socket.io-client': expect.any(String),
      xstate: expect.any(String),
      zod: expect.any(String),
    });
    const index = await readFile(path.join(project, 'node_modules/@callchart/client/index.d.ts'), 'utf8');
    expect(index).not.toMatch(/from ['"]\.[^'"]*\.ts['"]/);
    expect(index).toMatch(/from ['"]\.\/visitorClient\.js['"]/);
  });

  it.each(['NodeNext', 'Bundler'] as const)(
    'type-checks a program and the custom-UI example against the installed package (strict, moduleResolution %s)',
    async (resolution) => {
      expect(await (resolution === 'NodeNext' ? compileOnce() : typeCheck(resolution))).toEqual({ ok: true, output: '' });
    },
    120_000,
  );

  describe('in Node against the real server', () => {
    const t = suiteServer();

    it('runs a whole call from the installed package, media over @roamhq/wrtc (data channel), told by the typed events', async () => {
      const { token } = await visitorToken(t.url);
      const env = {
        ...process.env,
        CALLCHART_URL: t.url,
        VISITOR_TOKEN: token,
        AGENT_TOKEN: await agentToken(t.url, 'ada'),
        WRTC_MODULE: createRequire(path.join(repoRoot, 'apps/client/package.json')).resolve('@roamhq/wrtc'),
      };
      const compile = await compileOnce();
      expect(compile.ok, compile.output).toBe(true);
      const { stdout } = await run(process.execPath, [path.join(project, 'out/call.js')], { cwd: project, env, timeout: 60_000 }).catch(
        (error: { stdout?: string; stderr?: string }) => {
          throw new Error(`the program failed:\n${error.stdout ?? ''}\n${error.stderr ?? ''}`);
        },
      );
      const heard = JSON.parse(stdout.trim().split('\n').at(-1)!) as {
        visitor: { statuses: { connection: string; state: string }[]; ended: unknown[]; errors: string[] };
        agent: { statuses: { connection: string; state: string }[]; ended: unknown[]; errors: string[] };
        timedOut: boolean;
      };
      const stays = (statuses: { state: string }[]) => statuses.map((s) => s.state).filter((state, i, all) => state !== all[i - 1]);

      expect(heard.timedOut).toBe(false);
      // The server's accepted session is the first thing each client told.
      expect(heard.visitor.statuses[0]).toMatchObject({ connection: 'ready', state: 'idle' });
      expect(heard.agent.statuses[0]).toMatchObject({ connection: 'ready', state: 'offline' });
      expect(stays(heard.visitor.statuses)).toEqual(['idle', 'waiting', 'connecting', 'inCall', 'ended']);
      expect(stays(heard.agent.statuses)).toEqual(['offline', 'available', 'ringing', 'connecting', 'inCall', 'available']);
      const callId = (heard.visitor.ended[0] as { callId?: unknown } | undefined)?.callId;
      expect(callId).toEqual(expect.any(String));
      expect(heard.visitor.ended).toEqual([{ reason: 'hangup', callId }]);
      expect(heard.agent.ended).toEqual([expect.objectContaining({ reason: 'visitor-hangup', callId, visitorName: 'Vera Visitor' })]);
      expect([...heard.visitor.errors, ...heard.agent.errors]).toEqual([]);
      expect(await stored(t.server, (store) => store.calls.get(callId as string))).toMatchObject({ state: 'ended', endReason: 'hangup' });
    }, 120_000);
  });
});
