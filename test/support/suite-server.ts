/**
 * One test server for a whole `describe` block whose tests share it: started before the first test and
 * closed after the last.
 */
import { afterAll, beforeAll } from 'vitest';
import { startTestServer, type TestServer } from './server.ts';

/** Registers the hooks; call it inside the `describe`. The handle is usable from the first test on. */
export function suiteServer(env: Record<string, string> = {}): TestServer {
  let started: TestServer | undefined;
  beforeAll(async () => {
    started = await startTestServer(env);
  });
  afterAll(async () => {
    await started?.close();
  });
  const current = (): TestServer => {
    if (!started) throw new Error('the suite server starts in beforeAll, before the first test');
    return started;
  };
  return {
    get server() {
      return current().server;
    },
    get url() {
      return current().url;
    },
    get databasePath() {
      return current().databasePath;
    },
    restart: () => current().restart(),
    close: () => current().close(),
  };
}
