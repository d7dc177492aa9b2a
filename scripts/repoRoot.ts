/**
 * The repository's root directory, for the tooling that reads and writes the checkout by path: the
 * build scripts, the machine docs, the test support and the bench.
 */
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '..');
