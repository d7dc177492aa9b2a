/**
 * What the scenarios of one browser suite share: one Chromium and one local relay for the whole suite,
 * and either an app per scenario or one app for all of them. Everything a scenario opened is taken down
 * after it, people first, so that no page keeps reconnecting to what is being taken away.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { launchBrowser } from './browser.ts';
import { startApp, type App } from './e2e.ts';
import { TurnServer } from './turn.ts';

export interface BrowserSuite {
  readonly browser: Browser;
  readonly turn: TurnServer;
  /** The app all scenarios use; only with `sharedApp`. */
  readonly app: App;
  /** An app for this scenario alone, closed after it. */
  startApp(env?: Record<string, string>): Promise<App>;
  /** Serves `html` at every path of an origin of its own on loopback until this scenario ends; resolves to its URL. */
  page(html: string): Promise<string>;
  /** A step to take after this scenario, once its people have left; the last one given goes first. */
  later(step: () => Promise<unknown>): void;
}

export interface BrowserSuiteOptions {
  /** One app for every scenario, started before the first and closed after the last. */
  sharedApp?: boolean;
  /**
   * False where nobody calls: the relay is created, because the app wants its address all the same, but
   * never started. Otherwise it runs for every scenario, and one that stopped it finds it running again.
   */
  relayStarted?: boolean;
}

/** Registers the suite's hooks; call it inside the suite's `describe`. */
export function browserSuite({ sharedApp = false, relayStarted = true }: BrowserSuiteOptions = {}): BrowserSuite {
  let browser: Browser | undefined;
  let turn: TurnServer | undefined;
  let app: App | undefined;
  let undo: (() => Promise<unknown>)[] = [];
  const ready = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`the suite's ${what} is not there: it is set up in beforeAll`);
    return value;
  };

  beforeAll(async () => {
    turn = await TurnServer.create();
    if (relayStarted) await turn.start();
    browser = await launchBrowser();
    if (sharedApp) app = await startApp(turn);
  }, 30_000);

  afterEach(async () => {
    const steps = [() => Promise.all(ready(browser, 'browser').contexts().map((context) => context.close())), ...undo.reverse()];
    undo = [];
    // Every step, even after one fails, so that one scenario's failure leaves no process behind.
    const failures: unknown[] = [];
    for (const step of steps) await step().catch((error: unknown) => failures.push(error));
    if (relayStarted) await turn?.start();
    if (failures.length > 0) throw new AggregateError(failures, 'tearing a scenario down failed');
  }, 30_000);

  afterAll(async () => {
    await app?.close();
    await browser?.close();
    await turn?.dispose();
  });

  return {
    get browser() {
      return ready(browser, 'browser');
    },
    get turn() {
      return ready(turn, 'relay');
    },
    get app() {
      return ready(app, 'shared app');
    },
    async startApp(env = {}) {
      const started = await startApp(ready(turn, 'relay'), env);
      undo.push(() => started.close());
      return started;
    },
    async page(html) {
      const server = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(html));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      undo.push(() => new Promise((resolve) => server.close(resolve)));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    },
    later(step) {
      undo.push(step);
    },
  };
}
