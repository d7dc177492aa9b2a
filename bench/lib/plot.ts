/**
 * Small hand-drawn SVG plots for benchmark results: a line/scatter plot and a bar histogram. No library:
 * the files must open in any browser and diff readably in review.
 */
import { extent } from './stats.ts';

export interface PlotPoint {
  x: number;
  y: number;
  /** Written beside the point, e.g. `4/5` for a survival count. */
  label?: string;
}

export interface PlotSeries {
  name: string;
  points: PlotPoint[];
  /** `line` joins the points in x order; `points` draws only the markers. */
  mode?: 'line' | 'points';
}

export interface LinePlot {
  title: string;
  xLabel: string;
  yLabel: string;
  series: PlotSeries[];
  /** Under the title, e.g. what is left out of the plot and why; wrapped to at most two lines (`\n` breaks one). */
  note?: string;
  /** Dashed horizontal lines, e.g. a target. */
  guides?: { y: number; label: string }[];
}

export interface HistogramPlot {
  title: string;
  xLabel: string;
  yLabel: string;
  bins: { from: number; to: number; count: number }[];
  /** As for `LinePlot`. */
  note?: string;
}

const WIDTH = 720;
const HEIGHT = 440;
const MARGIN = { top: 64, bottom: 56, left: 72 };
/** Right margin with room for a legend, and without. */
const LEGEND_RIGHT = 190;
const PLAIN_RIGHT = 32;
const PLOT_H = HEIGHT - MARGIN.top - MARGIN.bottom;
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f'];
const FONT = 'font-family="system-ui, sans-serif"';

const escapeXml = (text: string) => text.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
const fixed = (n: number) => (Math.round(n * 10) / 10).toString();

/** Round tick positions (1, 2 or 5 × 10^k apart) covering [min, max]. */
export function niceTicks(min: number, max: number, count = 6): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
  if (max === min) max = min + 1;
  const raw = (max - min) / Math.max(1, count - 1);
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  const ticks: number[] = [];
  for (let t = Math.floor(min / step) * step; t <= max + step * 1e-9; t += step) ticks.push(Number(t.toPrecision(12)));
  if (ticks.at(-1)! < max) ticks.push(Number((ticks.at(-1)! + step).toPrecision(12)));
  return ticks;
}

function formatTick(value: number): string {
  if (Math.abs(value) >= 10_000) return `${fixed(value / 1000)}k`;
  return Number.isInteger(value) ? String(value) : value.toPrecision(3).replace(/\.?0+$/, '');
}

const NOTE_CHARS = 115;
const NOTE_LINES = 2;

/** The note in at most two lines that fit the width: its own line breaks first, then at spaces. */
function noteLines(note: string): string[] {
  const lines: string[] = [];
  for (const paragraph of note.split('\n').filter(Boolean)) {
    let line = '';
    for (const word of paragraph.split(' ')) {
      if (line && line.length + 1 + word.length > NOTE_CHARS) {
        lines.push(line);
        line = word;
      } else {
        line = line ? `${line} ${word}` : word;
      }
    }
    if (line) lines.push(line);
  }
  if (lines.length > NOTE_LINES) lines.splice(NOTE_LINES - 1, lines.length, `${lines[NOTE_LINES - 1]} …`);
  return lines;
}

interface Frame {
  plotW: number;
  x: (value: number) => number;
  y: (value: number) => number;
  parts: string[];
}

function frame(title: string, note: string | undefined, xLabel: string, yLabel: string, xTicks: number[], yTicks: number[], right: number): Frame {
  const plotW = WIDTH - MARGIN.left - right;
  const [x0, x1] = [xTicks[0]!, xTicks.at(-1)!];
  const [y0, y1] = [yTicks[0]!, yTicks.at(-1)!];
  const x = (value: number) => MARGIN.left + ((value - x0) / (x1 - x0 || 1)) * plotW;
  const y = (value: number) => MARGIN.top + PLOT_H - ((value - y0) / (y1 - y0 || 1)) * PLOT_H;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" ${FONT} font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="#fff"/>`,
    `<text x="${WIDTH / 2}" y="24" text-anchor="middle" font-size="15" font-weight="600">${escapeXml(title)}</text>`,
  ];
  noteLines(note ?? '').forEach((line, i) => parts.push(`<text x="${WIDTH / 2}" y="${42 + i * 14}" text-anchor="middle" fill="#555" font-size="11">${escapeXml(line)}</text>`));
  for (const tick of yTicks) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${fixed(y(tick))}" y2="${fixed(y(tick))}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${MARGIN.left - 8}" y="${fixed(y(tick) + 4)}" text-anchor="end">${formatTick(tick)}</text>`);
  }
  for (const tick of xTicks) {
    parts.push(`<line x1="${fixed(x(tick))}" x2="${fixed(x(tick))}" y1="${MARGIN.top + PLOT_H}" y2="${MARGIN.top + PLOT_H + 5}" stroke="#333"/>`);
    parts.push(`<text x="${fixed(x(tick))}" y="${MARGIN.top + PLOT_H + 19}" text-anchor="middle">${formatTick(tick)}</text>`);
  }
  parts.push(
    `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${MARGIN.top + PLOT_H}" y2="${MARGIN.top + PLOT_H}" stroke="#333"/>`,
    `<line x1="${MARGIN.left}" x2="${MARGIN.left}" y1="${MARGIN.top}" y2="${MARGIN.top + PLOT_H}" stroke="#333"/>`,
    `<text x="${MARGIN.left + plotW / 2}" y="${HEIGHT - 14}" text-anchor="middle">${escapeXml(xLabel)}</text>`,
    `<text transform="translate(18 ${MARGIN.top + PLOT_H / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
  );
  return { plotW, x, y, parts };
}

/** Lines (or markers) for each series on shared axes, with a legend on the right. */
export function linePlotSvg({ title, xLabel, yLabel, series, note, guides = [] }: LinePlot): string {
  const all = series.flatMap((s) => s.points);
  const xs = all.map((p) => p.x);
  const ys = [...all.map((p) => p.y), ...guides.map((g) => g.y)];
  const xRange = extent(xs);
  const yRange = extent(ys);
  const xTicks = xRange ? niceTicks(Math.min(0, xRange.min), xRange.max) : [0, 1];
  const yTicks = xRange && yRange ? niceTicks(Math.min(0, yRange.min), yRange.max * 1.05) : [0, 1];
  const { plotW, x, y, parts } = frame(title, note, xLabel, yLabel, xTicks, yTicks, LEGEND_RIGHT);
  for (const guide of guides) {
    parts.push(`<line x1="${MARGIN.left}" x2="${MARGIN.left + plotW}" y1="${fixed(y(guide.y))}" y2="${fixed(y(guide.y))}" stroke="#888" stroke-dasharray="5 4"/>`);
    parts.push(`<text x="${MARGIN.left + plotW - 4}" y="${fixed(y(guide.y) - 5)}" text-anchor="end" fill="#666" font-size="11">${escapeXml(guide.label)}</text>`);
  }
  series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length]!;
    const points = [...s.points].sort((a, b) => a.x - b.x);
    if ((s.mode ?? 'line') === 'line' && points.length > 1) {
      parts.push(`<polyline fill="none" stroke="${colour}" stroke-width="2" points="${points.map((p) => `${fixed(x(p.x))},${fixed(y(p.y))}`).join(' ')}"/>`);
    }
    for (const p of points) {
      parts.push(`<circle cx="${fixed(x(p.x))}" cy="${fixed(y(p.y))}" r="4" fill="${colour}"><title>${escapeXml(`${s.name}: (${p.x}, ${p.y})`)}</title></circle>`);
      if (p.label) parts.push(`<text x="${fixed(x(p.x) + 7)}" y="${fixed(y(p.y) - 7)}" fill="${colour}" font-size="11">${escapeXml(p.label)}</text>`);
    }
    const ly = MARGIN.top + 8 + i * 20;
    const lx = MARGIN.left + plotW + 16;
    parts.push(`<line x1="${lx}" x2="${lx + 22}" y1="${ly}" y2="${ly}" stroke="${colour}" stroke-width="2"/>`);
    parts.push(`<circle cx="${lx + 11}" cy="${ly}" r="4" fill="${colour}"/>`);
    parts.push(`<text x="${lx + 30}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** One bar per bin, its height the bin's count. */
export function histogramSvg({ title, xLabel, yLabel, bins, note }: HistogramPlot): string {
  const xTicks = bins.length ? niceTicks(bins[0]!.from, bins.at(-1)!.to, 8) : [0, 1];
  const yTicks = niceTicks(0, Math.max(1, ...bins.map((b) => b.count)), 6);
  const { x, y, parts } = frame(title, note, xLabel, yLabel, xTicks, yTicks, PLAIN_RIGHT);
  for (const bin of bins) {
    const left = x(bin.from);
    const width = Math.max(1, x(bin.to) - left - 1);
    parts.push(
      `<rect x="${fixed(left)}" y="${fixed(y(bin.count))}" width="${fixed(width)}" height="${fixed(y(0) - y(bin.count))}" fill="${COLOURS[0]}">` +
        `<title>${escapeXml(`${bin.from}–${bin.to}: ${bin.count}`)}</title></rect>`,
    );
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
