/**
 * Every benchmark's smoke mode (`npm run bench -- --quick <name>`) runs here, so none of them rots: each must
 * finish, and its JSON must carry figures that were measured. What the figures are is the benchmarks'
 * business; whether they meet their targets is reported, never asserted (DESIGN: speed is measured in bench/,
 * not in tests).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { BenchResult } from '../../bench/lib/bench.ts';
import { repoRoot } from '../../scripts/repoRoot.ts';

const benchmarks = readdirSync(path.join(repoRoot, 'bench'))
  .filter((file) => file.endsWith('.bench.ts'))
  .map((file) => file.slice(0, -'.bench.ts'.length))
  .sort();
const resultsDir = mkdtempSync(path.join(tmpdir(), 'callchart-bench-quick-'));
afterAll(() => rmSync(resultsDir, { recursive: true, force: true }));

async function runQuick(name: string): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', name], {
    cwd: repoRoot,
    env: { ...process.env, BENCH_RESULTS_DIR: resultsDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

describe('the benchmarks’ quick mode', () => {
  it('finds the benchmarks the issue asks for', () => {
    expect(benchmarks).toEqual(expect.arrayContaining(['bundle', 'capacity', 'cluster', 'recovery', 'relay', 'routing', 'storm']));
  });

  it.each(benchmarks)('%s runs and writes measured figures', async (name) => {
    const { code, output } = await runQuick(name);
    console.log(output.trim());
    expect(code, output).toBe(0);
    const result = JSON.parse(readFileSync(path.join(resultsDir, `${name}.quick.json`), 'utf8')) as BenchResult;
    expect(result).toMatchObject({ name, quick: true });
    expect(result.figures.length).toBeGreaterThan(0);
    for (const figure of result.figures) {
      // A figure that could not be measured must say why.
      if (figure.value === null) expect(figure.note, `${name}: ${figure.name}`).toBeTruthy();
      else expect(Number.isFinite(figure.value), `${name}: ${figure.name}`).toBe(true);
      if (figure.target !== undefined) expect(figure.met === null || typeof figure.met === 'boolean').toBe(true);
    }
    expect(result.figures.some((figure) => figure.value !== null)).toBe(true);
  }, 240_000);
});
