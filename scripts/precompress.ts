/**
 * A Vite plugin: once a build is written, every text asset gets a Brotli (`.br`) and a gzip (`.gz`) twin
 * beside it, compressed once at the highest levels, so the server picks one by `Accept-Encoding` and never
 * compresses on the fly. Node's own zlib does the compressing.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { brotliCompress, constants, gzip } from 'node:zlib';
import { promisify } from 'node:util';
import type { Plugin } from 'vite';

const brotli = promisify(brotliCompress);
const gzipped = promisify(gzip);
// Not source maps: only developer tools fetch them, and compressing them at the top level costs seconds a build.
const COMPRESSIBLE = new Set(['.js', '.css', '.html', '.svg', '.json', '.txt']);
// A variant must save more than its `Content-Encoding` header and the `Vary` it brings cost.
const HEADER_BYTES = 48;

async function* files(dir: string): AsyncGenerator<string> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* files(full);
    else yield full;
  }
}

export async function precompressDir(dir: string): Promise<void> {
  for await (const file of files(dir)) {
    if (!COMPRESSIBLE.has(path.extname(file))) continue;
    const body = await readFile(file);
    const [br, gz] = await Promise.all([
      brotli(body, { params: { [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY, [constants.BROTLI_PARAM_SIZE_HINT]: body.byteLength } }),
      gzipped(body, { level: constants.Z_BEST_COMPRESSION }),
    ]);
    const variants: [string, Buffer][] = [
      ['.br', br],
      ['.gz', gz],
    ];
    const worth = variants.filter(([, variant]) => variant.byteLength + HEADER_BYTES < body.byteLength);
    await Promise.all(worth.map(([suffix, variant]) => writeFile(file + suffix, variant)));
  }
}

export function precompress(): Plugin {
  let outDir = 'dist';
  return {
    name: 'callchart-precompress',
    apply: 'build',
    configResolved(config) {
      outDir = path.resolve(config.root, config.build.outDir);
    },
    async closeBundle() {
      await precompressDir(outDir);
    },
  };
}
