/**
 * The dependency arrows between the repository's parts. Product code (each workspace's `src/`, tests
 * aside) reaches only into its own workspace by path and into other workspaces by package name; no
 * product code imports test support, the bench or the scripts. The machines import no other workspace:
 * the server and the apps depend on them, never the reverse, and the server and the apps do not depend
 * on each other. The machines do no IO, so they import none of Node's modules. The bench reaches product
 * code only through the packages' `exports`; by path it may use its own files, the shared test support
 * (`test/support/`) and the tooling in `scripts/`.
 *
 * Specifiers are read with TypeScript's pre-processor, so `import type`, `export … from` and dynamic
 * `import()` count as much as a plain `import`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../scripts/repoRoot.ts';

interface Workspace {
  name: string;
  /** Repository-relative, POSIX separators. */
  dir: string;
}

const readJson = <T>(file: string): T => JSON.parse(readFileSync(path.join(repoRoot, file), 'utf8')) as T;

const workspaces: Workspace[] = readJson<{ workspaces: string[] }>('package.json').workspaces.map((dir) => ({
  dir,
  name: readJson<{ name: string }>(`${dir}/package.json`).name,
}));

/** Where the bench may reach by path: not product code, whose public face is its package's `exports`. */
const BENCH_PATHS = ['bench/', 'test/support/', 'scripts/'];

function specifiersOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((file) => file.fileName);
}

type Target = { kind: 'package'; workspace: Workspace } | { kind: 'path'; path: string } | { kind: 'external' };

function targetOf(file: string, specifier: string): Target {
  if (specifier.startsWith('.') || specifier.startsWith('/')) {
    return { kind: 'path', path: path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier)) };
  }
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
  const workspace = workspaces.find((candidate) => candidate.name === name);
  return workspace ? { kind: 'package', workspace } : { kind: 'external' };
}

function workspaceOf(file: string): Workspace | undefined {
  return workspaces.find((workspace) => file.startsWith(`${workspace.dir}/`));
}

/** Whether workspace `from` may depend on workspace `to`: the machines are innermost, the server and the apps apart. */
function mayDepend(from: Workspace, to: Workspace): boolean {
  if (from === to || to.dir === 'machines') return true;
  if (from.dir === 'machines' || from.dir === 'server' || to.dir === 'server') return false;
  return from.dir.startsWith('apps/') && to.dir.startsWith('apps/');
}

/** What is wrong with `file` (repository-relative) importing `specifier`, or null. */
function violation(file: string, specifier: string): string | null {
  const target = targetOf(file, specifier);
  const where = `${file} imports '${specifier}'`;
  if (target.kind === 'external') {
    return file.startsWith('machines/src/') && isBuiltin(specifier) ? `${where}: the machines do no IO, so they use none of Node's modules` : null;
  }
  if (file.startsWith('bench/')) {
    if (target.kind === 'path' && !BENCH_PATHS.some((prefix) => target.path.startsWith(prefix))) {
      return `${where}: the bench reaches ${target.path} by path; product code only through its package's exports`;
    }
    return null;
  }
  const from = workspaceOf(file);
  if (!from || !file.startsWith(`${from.dir}/src/`)) throw new Error(`${file} is neither product source nor bench`);
  if (target.kind === 'path') {
    return target.path.startsWith(`${from.dir}/`) ? null : `${where}: product code reaches ${target.path}, outside ${from.dir}, by path`;
  }
  return mayDepend(from, target.workspace) ? null : `${where}: ${from.dir} must not depend on ${target.workspace.dir}`;
}

function sourcesUnder(dir: string, keep: (file: string) => boolean): string[] {
  return readdirSync(path.join(repoRoot, dir), { recursive: true, encoding: 'utf8' })
    .map((entry) => path.posix.join(dir, entry.split(path.sep).join('/')))
    .filter((file) => /\.(ts|tsx|mts)$/.test(file) && !file.includes('/node_modules/') && keep(file));
}

const isTest = (file: string) => /\.test\.tsx?$/.test(file);
const productFiles = workspaces.flatMap((workspace) => sourcesUnder(`${workspace.dir}/src`, (file) => !isTest(file)));
const benchFiles = sourcesUnder('bench', (file) => !file.startsWith('bench/results/'));

function violationsIn(files: string[]): string[] {
  return files.flatMap((file) =>
    specifiersOf(readFileSync(path.join(repoRoot, file), 'utf8')).flatMap((specifier) => violation(file, specifier) ?? []),
  );
}

describe('the rules', () => {
  it('reads every kind of import', () => {
    const source = "import type { A } from './a.ts';\nexport * from './b.ts';\nconst c = await import('./c.ts');\nimport './d.ts';\n";
    expect(specifiersOf(source)).toEqual(['./a.ts', './b.ts', './c.ts', './d.ts']);
  });

  it.each([
    ['apps/client/src/callMedia.ts', '../../../test/support/server.ts'],
    ['server/src/pages.ts', '../../scripts/repoRoot.ts'],
    ['apps/widget/src/Widget.tsx', '../../client/src/connection.ts'],
    ['machines/src/protocol.ts', '@callchart/client'],
    ['machines/src/protocol.ts', '../../server/src/store.ts'],
    ['machines/src/backoff.ts', 'node:crypto'],
    ['machines/src/backoff.ts', 'fs'],
    ['server/src/switchboard/index.ts', '@callchart/client/http'],
    ['apps/client/src/connection.ts', '@callchart/server/config'],
    ['bench/storm.bench.ts', '../server/src/config.ts'],
    ['bench/lib/load/stormWorker.ts', '../../../apps/client/src/connection.ts'],
    ['bench/routing.bench.ts', '../test/unit/layers.test.ts'],
  ])('refuses %s importing %s', (file, specifier) => {
    expect(violation(file, specifier)).not.toBeNull();
  });

  it.each([
    ['apps/client/src/callMedia.ts', './connection.ts'],
    ['apps/dashboard/src/Console.tsx', '@callchart/client'],
    ['apps/dashboard/src/App.tsx', '@callchart/ui'],
    ['server/src/switchboard/index.ts', '@callchart/machines'],
    ['machines/src/index.ts', 'xstate'],
    ['server/src/store.ts', 'node:fs'],
    ['bench/storm.bench.ts', '@callchart/server/config'],
    ['bench/lib/fleet.ts', './load/identities.ts'],
    ['bench/bundle.bench.ts', '../test/support/browser.ts'],
    ['bench/bundle.bench.ts', '../scripts/build-apps.ts'],
  ])('allows %s importing %s', (file, specifier) => {
    expect(violation(file, specifier)).toBeNull();
  });
});

describe('the tree', () => {
  it('holds the product sources and the bench', () => {
    expect(productFiles).toEqual(
      expect.arrayContaining(['machines/src/protocol.ts', 'server/src/server.ts', 'apps/client/src/connection.ts', 'apps/widget/src/Widget.tsx']),
    );
    expect(productFiles.filter(isTest)).toEqual([]);
    expect(benchFiles).toEqual(expect.arrayContaining(['bench/run.ts', 'bench/lib/fleet.ts']));
  });

  it('product code imports no test, bench or script code, and depends on the machines, never the reverse', () => {
    expect(violationsIn(productFiles)).toEqual([]);
  });

  it('the bench uses product code through the packages only', () => {
    expect(violationsIn(benchFiles)).toEqual([]);
  });
});
