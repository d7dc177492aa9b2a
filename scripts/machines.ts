/**
 * `npm run machines`: writes each machine's Stately JSON and Mermaid diagram, and the diagrams' README,
 * as listed in stately.config.ts. `--check` writes nothing and exits 1 when a file is out of date.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { renderMachineDocs } from './machine-docs.ts';
import { repoRoot } from './repoRoot.ts';

const check = process.argv.includes('--check');
const stale: string[] = [];
for (const file of await renderMachineDocs()) {
  const target = path.join(repoRoot, file.path);
  const current = await readFile(target, 'utf8').catch(() => null);
  if (current === file.content) continue;
  stale.push(file.path);
  if (!check) {
    await mkdir(path.dirname(target), { recursive: true });
    await writeFile(target, file.content);
  }
}
if (check && stale.length) {
  console.error(`out of date: ${stale.join(', ')}; run npm run machines`);
  process.exit(1);
}
console.log(stale.length ? `${check ? 'stale' : 'wrote'}: ${stale.join(', ')}` : 'docs/machines is up to date');
