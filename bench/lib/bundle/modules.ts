/**
 * Which source modules the widget's bytes come from: each generated character of a chunk is charged to the
 * source its source map names, so a module's share is the minified code it became. Packages are summed
 * across their files.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { decode } from '@jridgewell/sourcemap-codec';

export interface ModuleShare {
  module: string;
  bytes: number;
}

function moduleName(source: string): string {
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(source);
  if (pkg?.[1]) return pkg[1];
  // Our own files, from the repository root: `machines/src/…`, `apps/client/src/…`.
  return source.replace(/^(\.\.\/)+/, '').replace(/^src\//, 'apps/widget/src/');
}

/** Minified bytes per module across `files` (each with its `.map` beside it), largest first. */
export function moduleShares(files: string[]): ModuleShare[] {
  const totals = new Map<string, number>();
  const charge = (name: string, bytes: number) => totals.set(name, (totals.get(name) ?? 0) + bytes);
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    // The bundler's own runtime chunk comes without a map.
    if (!existsSync(`${file}.map`)) {
      charge('(bundler runtime)', text.length);
      continue;
    }
    const code = text.split('\n');
    const map = JSON.parse(readFileSync(`${file}.map`, 'utf8')) as { sources: string[]; mappings: string };
    decode(map.mappings).forEach((segments, line) => {
      const length = code[line]?.length ?? 0;
      segments.forEach((segment, i) => {
        const end = segments[i + 1]?.[0] ?? length;
        const source = segment.length > 1 ? map.sources[segment[1]!] : undefined;
        const name = source === undefined ? '(bundler glue)' : moduleName(path.normalize(source));
        charge(name, end - segment[0]);
      });
    });
  }
  return [...totals].map(([module, bytes]) => ({ module, bytes })).sort((a, b) => b.bytes - a.bytes);
}
