/**
 * A hash of the server's and the machines' source as it is on disk, taken each time a server process starts.
 * Other work goes on in the same tree while a long benchmark runs: when the fingerprints of its servers
 * differ, the measurements it compares did not run the same code, and the results say so.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../../scripts/repoRoot.ts';

const SOURCES = ['server/src', 'machines/src'];

export function codeFingerprint(): string {
  const hash = createHash('sha256');
  for (const dir of SOURCES) {
    const files = readdirSync(path.join(repoRoot, dir), { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && !file.endsWith('.test.ts'))
      .sort();
    for (const file of files) hash.update(`${dir}/${file}\0`).update(readFileSync(path.join(repoRoot, dir, file))).update('\0');
  }
  return hash.digest('hex').slice(0, 12);
}

/** A note for a result whose servers ran different code, or undefined when they all ran the same. */
export function codeChangedNote(fingerprints: readonly string[]): string | undefined {
  const distinct = [...new Set(fingerprints)];
  if (distinct.length <= 1) return undefined;
  return `The server's source changed on disk during this run (${distinct.join(' → ')}): the measurements compared here did not all run the same code; run it again.`;
}
