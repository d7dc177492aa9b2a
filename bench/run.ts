/**
 * `npm run bench [-- --quick] [name ...]`: runs every `bench/<name>.bench.ts` (or the named ones) one after
 * another, prints each one's figures as a table, and writes `bench/results/<name>.json` (`.quick.json` in the
 * smoke mode). BENCH_RESULTS_DIR sends the results elsewhere, which is what the smoke test does. A full run
 * also rewrites the results section of docs/performance.md from every stored result.
 */
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BenchResult, Benchmark } from './lib/bench.ts';
import { updateResultsSection } from './lib/doc.ts';
import { FIGURE_HEADER, figureRows, storeResult, table } from './lib/report.ts';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const wanted = args.filter((arg) => !arg.startsWith('--'));
const resultsDir = process.env.BENCH_RESULTS_DIR ?? path.join(benchDir, 'results');

const available = readdirSync(benchDir)
  .filter((file) => file.endsWith('.bench.ts'))
  .map((file) => file.slice(0, -'.bench.ts'.length))
  .sort();
const unknown = wanted.filter((name) => !available.includes(name));
if (unknown.length > 0) {
  console.error(`No such benchmark: ${unknown.join(', ')}. There are: ${available.join(', ')}.`);
  process.exit(2);
}

const machine = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform} ${os.release()}`,
};

let failed = 0;
for (const name of wanted.length > 0 ? wanted : available) {
  const { default: benchmark } = (await import(pathToFileURL(path.join(benchDir, `${name}.bench.ts`)).href)) as { default: Benchmark };
  const scratchDir = mkdtempSync(path.join(os.tmpdir(), `callchart-bench-${name}-`));
  const started = performance.now();
  const startedAt = new Date().toISOString();
  console.log(`\n== ${benchmark.title}${quick ? ' (quick)' : ''}`);
  try {
    const outcome = await benchmark.run({ quick, scratchDir, log: (line) => console.log(`[${name}] ${line}`) });
    const result: BenchResult = { name, title: benchmark.title, quick, startedAt, durationMs: Math.round(performance.now() - started), machine, ...outcome };
    console.log(table(FIGURE_HEADER, figureRows(result.figures)));
    console.log(`wrote ${path.relative(process.cwd(), storeResult(resultsDir, result))} (${Math.round(result.durationMs / 1000)} s)`);
  } catch (error) {
    failed++;
    console.error(`[${name}] failed:`, error);
  } finally {
    rmSync(scratchDir, { recursive: true, force: true });
  }
}
// Only a full run into the repository's own results updates the document that quotes them.
if (!quick && process.env.BENCH_RESULTS_DIR === undefined) {
  const doc = path.join(benchDir, '../docs/performance.md');
  if (updateResultsSection(doc, resultsDir)) console.log(`updated the results in ${path.relative(process.cwd(), doc)}`);
}
process.exit(failed > 0 ? 1 : 0);
