import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const scripts = path.resolve(import.meta.dirname, '../../scripts');
const listed = readFileSync(path.join(scripts, 'system-packages.txt'), 'utf8')
  .split('\n')
  .map((line) => line.replace(/#.*/, '').trim())
  .filter(Boolean);

const run = (env: Record<string, string>) =>
  promisify(execFile)('bash', [path.join(scripts, 'ensure-system-packages.sh')], { env: { ...process.env, ...env } }).then(
    () => ({ code: 0, stderr: '' }),
    (error: { code: number; stderr: string }) => ({ code: error.code, stderr: error.stderr }),
  );

describe('scripts/ensure-system-packages.sh', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'callchart-packages-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // What test/support launches, by the package that ships it.
  it.each([
    ['chromium', 'the browser suite'],
    ['coturn', 'the relay whose death is the ICE fault'],
    ['iproute2', '`ip netns` for the namespaced browser'],
    ['nftables', '`nft` inside a namespace'],
  ])('lists %s, for %s', (pkg) => {
    expect(listed).toContain(pkg);
  });

  it('stops with the exact apt-get command when it may not install, naming only what is missing', async () => {
    const list = path.join(dir, 'packages.txt');
    // `bash` is installed wherever this script can run at all, so it must not be reported.
    writeFileSync(list, '# a comment\n\ncallchart-no-such-package  # trailing comment\nbash\ncallchart-no-such-other');
    const { code, stderr } = await run({ SYSTEM_PACKAGES_FILE: list, ENSURE_PACKAGES_NO_INSTALL: '1' });
    expect(code).toBe(1);
    const sudo = process.getuid?.() === 0 ? '' : 'sudo ';
    expect(stderr).toContain(`\n  ${sudo}apt-get install -y --no-install-recommends callchart-no-such-package callchart-no-such-other\n`);
  });

  it('passes without installing anything when every listed package is there', async () => {
    const list = path.join(dir, 'present.txt');
    writeFileSync(list, 'bash\n');
    expect(await run({ SYSTEM_PACKAGES_FILE: list, ENSURE_PACKAGES_NO_INSTALL: '1' })).toEqual({ code: 0, stderr: '' });
  });

  it('fails loudly when the list cannot be read', async () => {
    const { code, stderr } = await run({ SYSTEM_PACKAGES_FILE: path.join(dir, 'absent.txt') });
    expect(code).toBe(2);
    expect(stderr).toContain('cannot read the package list');
  });
});
