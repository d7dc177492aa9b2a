/** Printing a benchmark's figures as a table, and storing its result as JSON beside its plots. */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchResult, Figure } from './bench.ts';

/** A figure's number as the tables print it: whole numbers as they are, others to 2 decimals below 100. */
export function format(value: number | null | undefined, digits = 2): string {
  if (value === null || value === undefined) return '–';
  if (Number.isInteger(value)) return String(value);
  return value.toFixed(Math.abs(value) >= 100 ? 0 : digits);
}

export function figureRows(figures: readonly Figure[]): string[][] {
  return figures.map((figure) => [
    figure.name,
    `${format(figure.value)} ${figure.unit}`.trim(),
    figure.baseline ? `${figure.baseline.name}: ${format(figure.baseline.value)}` : '',
    figure.ratio === undefined ? '' : `${format(figure.ratio)}×`,
    figure.target ?? '',
    figure.met === undefined || figure.met === null ? '' : figure.met ? 'met' : 'MISSED',
  ]);
}

/** A plain-text table with a header row, columns padded to their widest cell. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export const FIGURE_HEADER = ['figure', 'value', 'baseline', 'ratio', 'target', 'verdict'] as const;

/** Writes `<dir>/<name>.json` (and `<name>.quick.json` for a smoke run) and the result's plots; returns the JSON path. */
export function storeResult(dir: string, result: BenchResult): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${result.name}${result.quick ? '.quick' : ''}.json`);
  writeFileSync(file, JSON.stringify({ ...result, plots: result.plots?.map((plot) => plot.file) ?? [] }, null, 2) + '\n');
  for (const plot of result.plots ?? []) writeFileSync(path.join(dir, result.quick ? plot.file.replace(/\.svg$/, '.quick.svg') : plot.file), plot.svg);
  return file;
}
