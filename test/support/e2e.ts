/**
 * The real app for browser scenarios: the server's own entry point as a child process (so a scenario can
 * SIGKILL it), relaying all media through a local TURN server, with the widget at `/` and the dashboard at
 * `/agent` opened by people who each have their own browser context.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core';
import { newPerson, openPage, pageLog } from './browser.ts';
import { repoRoot } from '../../scripts/repoRoot.ts';
import { agentToken, DEMO, freePort, getJson, spawnServer, tempDatabase, type DemoAgent, type SpawnedServer } from './server.ts';
import type { TurnServer } from './turn.ts';

/**
 * Short where a scenario waits on the server, long where a person must act first or where the call must
 * outlast the clients' own recovery: three ICE restart attempts of 10 s each must fit in the pause.
 */
export const BROWSER_TIMINGS: Record<string, string> = {
  RING_TIMEOUT_MS: '8000',
  AGENT_GRACE_MS: '4000',
  MAX_QUEUE_WAIT_MS: '2500',
  RECONNECTION_TIMEOUT_MS: '40000',
  RESUME_WINDOW_MS: '30000',
};

export interface App {
  url: string;
  server: SpawnedServer;
  /** SIGKILLs the server and starts it again on the same port and database, as after a crash. */
  crashAndRestart(downMs?: number): Promise<{ killedAt: number; listeningAt: number }>;
  kill(): Promise<void>;
  close(): Promise<void>;
}

/** `host` is the one address the server listens on, such as the host side of a test network namespace. */
export async function startApp(turn: TurnServer, env: Record<string, string> = {}, { host = '127.0.0.1' }: { host?: string } = {}): Promise<App> {
  const db = tempDatabase();
  const port = await freePort(host);
  const fullEnv = {
    HOST: host,
    PORT: String(port),
    DATABASE_PATH: db.path,
    LOG_LEVEL: 'info',
    ...BROWSER_TIMINGS,
    ...turn.serverEnv,
    ...env,
  };
  const app: App = {
    url: `http://${host}:${port}`,
    server: await spawnServer(fullEnv),
    async crashAndRestart(downMs = 0) {
      const killedAt = Date.now();
      await app.server.kill('SIGKILL');
      if (downMs > 0) await new Promise((resolve) => setTimeout(resolve, downMs));
      app.server = await spawnServer(fullEnv);
      return { killedAt, listeningAt: Date.now() };
    },
    kill: () => app.server.kill('SIGKILL'),
    async close() {
      await app.server.kill('SIGKILL');
      db.remove();
    },
  };
  return app;
}

/** A shop's page on an origin other than the app's: a heading, and nothing of ours but the widget's tag, with `attributes` added to it. */
export const shopPage = (app: App, attributes = '') => `<!doctype html><html lang="en"><meta charset="utf-8"><title>Shop</title><body><main><h1>The shop</h1></main>
<script src="${app.url}/widget.js" data-pool="support"${attributes} defer></script>`;

export interface Person {
  context: BrowserContext;
  page: Page;
}

/** Resolves once `text` shows inside one of the elements `locator` finds; fails naming what the page showed instead. */
export async function waitForText(page: Page, locator: Locator, text: string | RegExp, timeoutMs = 10_000): Promise<void> {
  try {
    // The text itself, not its region: the widget's overlay is drawn over the video, out of the region's box.
    await locator.getByText(text).first().waitFor({ state: 'visible', timeout: timeoutMs });
  } catch (error) {
    const shown = await locator.allInnerTexts().catch(() => []);
    throw new Error(
      `${page.url()} never showed ${String(text)} within ${timeoutMs} ms; it showed ${JSON.stringify(shown)}\n` +
        `${(error as Error).message.split('\n')[0]}\n${pageLog(page)}`,
    );
  }
}

/** What a person reads in the page's live status regions (the widget's and the dashboard's call status). */
export const status = (page: Page, text: string | RegExp, timeoutMs?: number) => waitForText(page, page.getByRole('status'), text, timeoutMs);

/**
 * The server's messages to one page, passed through the test so that they can be held back. The server
 * moves some requests through two states at once (reassigning, then ringing the next agent); holding
 * what follows the first keeps it on screen long enough to be checked and photographed. Server and page
 * run unchanged: it is the network between them that is slow, at the moment the test chooses.
 */
export class ServerMessageHold {
  private trigger: RegExp | null = null;
  private held: (() => void)[] | null = null;

  /** Must run before the page loads: the page's WebSocket is replaced when its document starts. */
  async route(context: BrowserContext): Promise<void> {
    await context.routeWebSocket(/\/socket\.io\//, (pageSide) => {
      const server = pageSide.connectToServer();
      server.onMessage((message) => this.pass(() => pageSide.send(message), message));
    });
  }

  /** Delivers the next server message matching `pattern`, then holds every later one until `release()`. */
  after(pattern: RegExp): void {
    this.trigger = pattern;
  }

  release(): void {
    const held = this.held ?? [];
    this.held = null;
    this.trigger = null;
    for (const deliver of held) deliver();
  }

  private pass(deliver: () => void, message: string | Buffer): void {
    if (this.held) {
      this.held.push(deliver);
      return;
    }
    deliver();
    if (this.trigger?.test(message.toString())) {
      this.trigger = null;
      this.held = [];
    }
  }
}

export async function openVisitor(browser: Browser, app: Pick<App, 'url'>, { hold }: { hold?: ServerMessageHold } = {}): Promise<Person> {
  const context = await newPerson(browser);
  await hold?.route(context);
  const page = await openPage(context, `${app.url}/`);
  await waitForText(page, page.getByRole('button'), 'Call an agent', 15_000);
  return { context, page };
}

export async function openAgent(browser: Browser, app: Pick<App, 'url'>, agent: DemoAgent, { screenshotLogin }: { screenshotLogin?: string } = {}): Promise<Person> {
  const context = await newPerson(browser);
  const page = await openPage(context, `${app.url}/agent`);
  await waitForText(page, page.getByRole('button'), 'Log in', 15_000);
  if (screenshotLogin) await screenshot(page, screenshotLogin);
  await page.getByLabel('Email').fill(DEMO[agent].email);
  await page.getByLabel('Password').fill(DEMO[agent].password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 15_000 });
  const available = page.getByRole('group', { name: 'Presence' }).getByRole('button', { name: 'Available' });
  await available.waitFor();
  if ((await available.getAttribute('aria-pressed')) !== 'true') await available.click();
  await page.locator('[aria-pressed="true"]', { hasText: 'Available' }).waitFor();
  return { context, page };
}

/** The live inspector at /inspect, logged in as the demo inspector, with the live request `requestId` chosen. */
export async function openInspector(browser: Browser, app: App, requestId: string): Promise<Person> {
  const context = await newPerson(browser);
  const page = await openPage(context, `${app.url}/inspect`);
  // A developer's screen: every actor of a call side by side, large enough to read in the screenshots.
  await page.setViewportSize({ width: 1600, height: 1000 });
  await waitForText(page, page.getByRole('button'), 'Log in', 15_000);
  await page.getByLabel('Email').fill(DEMO.inspector.email);
  await page.getByLabel('Password').fill(DEMO.inspector.password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.locator(`button[data-request-id="${requestId}"]`).click({ timeout: 15_000 });
  return { context, page };
}

/** The state an inspector page shows for one actor card, e.g. `reconnecting.attempting`. */
export function inspectedActor(page: Page, kind: string, side: 'server' | 'agent' | 'visitor'): Locator {
  return page.locator(`[data-kind="${kind}"][data-side="${side}"]`).first();
}

/** Resolves once the actor's card shows a state starting with `prefix`; fails naming the states it showed. */
export async function inspectedStateStartsWith(page: Page, kind: string, side: 'server' | 'agent' | 'visitor', prefix: string, timeoutMs = 20_000): Promise<void> {
  const card = inspectedActor(page, kind, side);
  const seen = new Set<string>();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const state = await card.getAttribute('data-state', { timeout: 1_000 }).catch(() => null);
    if (state !== null) seen.add(state);
    if (state?.startsWith(prefix)) return;
    if (Date.now() > deadline) throw new Error(`the inspector never showed ${side} ${kind} in ${prefix}… within ${timeoutMs} ms; it showed: ${[...seen].join(', ') || 'no such actor'}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Resolves once the person's own camera shows in the page: a picture of a call must not show an empty preview. */
export async function ownCameraShowing(page: Page, timeoutMs = 10_000): Promise<void> {
  const preview = page.locator('video[data-role="local"]');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await preview.evaluate((video: HTMLVideoElement) => video.readyState >= HTMLMediaElement.HAVE_CURRENT_DATA, undefined, { timeout: 1_000 }).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${page.url()} never showed the local camera within ${timeoutMs} ms\n${pageLog(page)}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The call id the visitor's call actor holds, for reading the server's record of the call. */
export async function visitorCallId(page: Page): Promise<string> {
  const id = await page.evaluate(() => {
    const call = (window as unknown as { callchart?: { call?: { getSnapshot(): { context: { callId: string | null } } } } }).callchart?.call;
    return call?.getSnapshot().context.callId ?? null;
  });
  if (!id) throw new Error(`the visitor page holds no call id\n${pageLog(page)}`);
  return id;
}

export interface CallDetails {
  call: { id: string; requestId: string; agentId: string; state: string; endReason: string | null; connectedAt: number | null; endedAt: number | null };
  telemetry: {
    disconnections: { leg: string; at: number; cause: string }[];
    reconnectionAttempts: { leg: string; at: number; durationMs: number | null; outcome: string }[];
    totalPauseMs: number;
  };
}

export async function callDetails(app: Pick<App, 'url'>, callId: string, agent: DemoAgent = 'inspector'): Promise<CallDetails> {
  const { status: code, body } = await getJson<CallDetails>(`${app.url}/api/calls/${encodeURIComponent(callId)}`, await agentToken(app.url, agent));
  if (code !== 200) throw new Error(`GET /api/calls/${callId} answered ${code}: ${JSON.stringify(body)}`);
  return body;
}

/** Polls the server's record until `done` holds, since the store is written just after the UI changes. */
export async function waitForCall(app: Pick<App, 'url'>, callId: string, done: (details: CallDetails) => boolean, timeoutMs = 10_000): Promise<CallDetails> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const details = await callDetails(app, callId);
    if (done(details)) return details;
    if (Date.now() > deadline) throw new Error(`call ${callId} never reached the expected record: ${JSON.stringify(details)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const SCREENSHOTS = path.join(repoRoot, 'docs/screenshots');

/** Writes docs/screenshots/<name>.png: the documentation's picture of this UI state. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  // Video frames and spinners move; what the picture documents is the layout and the text.
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), animations: 'disabled' });
}

/** A loopback port in front of an app that listens on another address only. */
export interface LoopbackEntrance {
  /** The same app and server, with `url` on loopback: pass it to `openAgent` or `openVisitor`. */
  app: App;
  close(): Promise<void>;
}

/**
 * Passes every TCP connection made to a loopback port on to `app`'s own address, byte for byte, so HTTP
 * and the socket's WebSocket alike reach the server. A browser on this machine resolves nothing but
 * loopback, while an app on a test namespace's host side listens on that address alone. Each connection
 * ends with its other half, so a server crash is still a lost socket on the page.
 */
export async function loopbackEntrance(app: App): Promise<LoopbackEntrance> {
  const { connect, createServer } = await import('node:net');
  const target = new URL(app.url);
  const open = new Set<import('node:net').Socket>();
  const forwarder = createServer((page) => {
    const upstream = connect(Number(target.port), target.hostname);
    for (const [from, to] of [
      [page, upstream],
      [upstream, page],
    ] as const) {
      open.add(from);
      // A half that ends lets the other flush what it holds before it ends too; one that fails takes it down.
      from.pipe(to);
      from.on('error', () => to.destroy());
      from.once('close', () => open.delete(from));
    }
  });
  const port = await new Promise<number>((resolve, reject) => {
    forwarder.once('error', reject);
    forwarder.listen(0, '127.0.0.1', () => resolve((forwarder.address() as { port: number }).port));
  });
  // Everything but the address is the app's own, read through it: a crash and restart replaces its server.
  const seen = Object.create(app, { url: { value: `http://127.0.0.1:${port}`, enumerable: true } }) as App;
  return {
    app: seen,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of open) socket.destroy();
        forwarder.close(() => resolve());
      }),
  };
}
