/**
 * Keeps the results table of docs/performance.md in step with bench/results: after a full run, the part
 * between the two markers is rewritten from every stored result, so the document never quotes figures that
 * the JSON beside it does not hold.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchResult, Figure } from './bench.ts';
import { format } from './report.ts';

export const RESULTS_START = '<!-- results:start (written by npm run bench) -->';
export const RESULTS_END = '<!-- results:end -->';

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function row(figure: Figure): string {
  const verdict = figure.met === true ? 'met' : figure.met === false ? '**missed**' : '';
  return `| ${cell(figure.name)} | ${format(figure.value)} ${cell(figure.unit)} | ${figure.baseline ? `${cell(figure.baseline.name)}: ${format(figure.baseline.value)}` : ''} | ${figure.ratio === undefined ? '' : `${format(figure.ratio)}×`} | ${cell(figure.target ?? '')} | ${verdict} |`;
}

/** The markdown for every full result in `resultsDir`, one table per benchmark. */
export function resultsMarkdown(resultsDir: string): string {
  const results = readdirSync(resultsDir)
    .filter((file) => file.endsWith('.json') && !file.endsWith('.quick.json'))
    .sort()
    .map((file) => JSON.parse(readFileSync(path.join(resultsDir, file), 'utf8')) as BenchResult);
  return results
    .map((result) =>
      [
        `### ${result.title}`,
        '',
        `Run ${result.startedAt.slice(0, 16).replace('T', ' ')} UTC, ${Math.round(result.durationMs / 1000)} s, on ${result.machine.cpus} × ${result.machine.cpuModel}, Node ${result.machine.node}. Raw data: [bench/results/${result.name}.json](../bench/results/${result.name}.json).`,
        '',
        '| figure | value | baseline (same run) | ratio | target | verdict |',
        '|---|---|---|---|---|---|',
        ...result.figures.map(row),
      ].join('\n'),
    )
    .join('\n\n');
}

/** Rewrites the results section of `docFile`; returns false when the file or its markers are missing. */
export function updateResultsSection(docFile: string, resultsDir: string): boolean {
  if (!existsSync(docFile)) return false;
  const text = readFileSync(docFile, 'utf8');
  const start = text.indexOf(RESULTS_START);
  const end = text.indexOf(RESULTS_END);
  if (start < 0 || end < start) return false;
  writeFileSync(docFile, `${text.slice(0, start + RESULTS_START.length)}\n\n${resultsMarkdown(resultsDir)}\n\n${text.slice(end)}`);
  return true;
}
