import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderMachineDocs } from '../../scripts/machine-docs.ts';
import { repoRoot } from '../../scripts/repoRoot.ts';

describe('generated machine docs', async () => {
  const files = await renderMachineDocs();
  for (const file of files) {
    it(`${file.path} is up to date (npm run machines)`, async () => {
      const current = await readFile(path.join(repoRoot, file.path), 'utf8').catch(() => '(missing)');
      expect(current).toBe(file.content);
    });
  }
});
