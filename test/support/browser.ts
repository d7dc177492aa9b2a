/**
 * Browser end-to-end support: Debian's Chromium driven by playwright-core with fake camera and microphone,
 * and the media checks every scenario makes. No browser is ever downloaded; `.ci/run` installs Chromium.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

// The second path skips Debian's wrapper script, which only adds flags from /etc/chromium.d.
const CHROMIUM_PATHS = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'];

export function chromiumPath(): string {
  const found = CHROMIUM_PATHS.find((candidate) => existsSync(candidate));
  if (!found) {
    throw new Error(
      `Chromium is not installed (none of ${CHROMIUM_PATHS.join(', ')} exists). The browser suite drives ` +
        "Debian's Chromium and never downloads one; `.ci/run` installs it with apt-get (apt-get install -y chromium).",
    );
  }
  return found;
}

const OUR_DISABLED_FEATURES = [
  // Host candidates stay plain 127.0.0.1 addresses instead of mDNS names nothing here can resolve.
  'WebRtcHideLocalIpsWithMdns',
];

const BASE_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  // No DNS at all: every test address is a loopback literal, and nothing may leave the machine.
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1',
];

const commandLineOf = async (browser: Browser): Promise<string> => {
  const page = await browser.newPage();
  try {
    await page.goto('chrome://version');
    return ((await page.locator('#command_line').textContent()) ?? '').trim();
  } finally {
    await page.close();
  }
};

const disableFeaturesSwitches = (commandLine: string): string[] =>
  commandLine.split(/\s+/).filter((arg) => arg.startsWith('--disable-features='));

let playwrightSwitch: Promise<string | null> | null = null;

/**
 * Chromium honours only the last `--disable-features=` it is given, so ours would silently drop the list
 * playwright relies on. Playwright's list is private and changes between releases; reading it from a
 * browser it launched keeps the merge right for whatever version is installed.
 */
function playwrightDisableFeatures(): Promise<string | null> {
  playwrightSwitch ??= (async () => {
    const probe = await chromium.launch({ executablePath: chromiumPath(), args: BASE_ARGS });
    try {
      return disableFeaturesSwitches(await commandLineOf(probe)).at(-1) ?? null;
    } finally {
      await probe.close();
    }
  })();
  return playwrightSwitch;
}

export async function launchBrowser(): Promise<Browser> {
  const theirs = await playwrightDisableFeatures();
  const features = new Set([...(theirs ? theirs.slice('--disable-features='.length).split(',') : []), ...OUR_DISABLED_FEATURES]);
  return chromium.launch({
    executablePath: chromiumPath(),
    args: [...BASE_ARGS, `--disable-features=${[...features].filter(Boolean).join(',')}`],
    ...(theirs ? { ignoreDefaultArgs: [theirs] } : {}),
  });
}

/** The browser's real command line, for checking what Chromium was actually started with. */
export async function browserDisableFeatures(browser: Browser): Promise<string[]> {
  return disableFeaturesSwitches(await commandLineOf(browser));
}

/** A fresh profile per person: separate storage, so a visitor and two agents can share one browser. */
export async function newPerson(browser: Browser): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 960, height: 720 } });
  await context.grantPermissions(['camera', 'microphone']);
  return context;
}

/** Opens a page and keeps its console and errors, so a failing scenario can say what the page said. */
export async function openPage(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  const lines: string[] = [];
  page.on('console', (message) => lines.push(`[${message.type()}] ${message.text()}`));
  page.on('pageerror', (error) => lines.push(`[pageerror] ${error.message}`));
  pageLogs.set(page, lines);
  await page.goto(url);
  return page;
}

const pageLogs = new WeakMap<Page, string[]>();

export function pageLog(page: Page): string {
  return (pageLogs.get(page) ?? []).slice(-60).join('\n');
}

export interface MediaStats {
  video: number;
  audio: number;
}

/**
 * Inbound RTP bytes by kind, from the page's `window.callchart.getStats()`. Whatever shape it returns
 * (an RTCStatsReport, an array of reports or stats, or a plain record), every `inbound-rtp` entry counts.
 */
export async function mediaStats(page: Page): Promise<MediaStats> {
  return page.evaluate(async () => {
    const api = (window as unknown as { callchart?: { getStats?: () => unknown } }).callchart;
    if (!api?.getStats) throw new Error('window.callchart.getStats is not available on this page');
    const totals = { video: 0, audio: 0 };
    const visit = (value: unknown, depth: number): void => {
      if (!value || typeof value !== 'object' || depth > 4) return;
      const stat = value as { type?: unknown; kind?: unknown; mediaType?: unknown; bytesReceived?: unknown };
      if (stat.type === 'inbound-rtp' && typeof stat.bytesReceived === 'number') {
        const kind = stat.kind ?? stat.mediaType;
        if (kind === 'video' || kind === 'audio') totals[kind] += stat.bytesReceived;
        return;
      }
      if (value instanceof Map || (typeof (value as { forEach?: unknown }).forEach === 'function' && 'size' in value)) {
        (value as Map<unknown, unknown>).forEach((entry) => visit(entry, depth + 1));
      } else if (Array.isArray(value)) {
        for (const entry of value) visit(entry, depth + 1);
      } else {
        for (const entry of Object.values(value)) visit(entry, depth + 1);
      }
    };
    visit(await api.getStats(), 0);
    return totals;
  });
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resolves once inbound video and audio bytes both grow between two samples taken `intervalMs` apart:
 * media arriving now, not bytes left over from before a fault. Returns when that was first seen.
 */
export async function waitForMediaFlowing(
  page: Page,
  { timeoutMs = 20_000, intervalMs = 250 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<{ at: number; stats: MediaStats }> {
  const deadline = Date.now() + timeoutMs;
  let last: MediaStats | null = null;
  for (;;) {
    const stats = await mediaStats(page).catch(() => null);
    if (stats && last && stats.video > last.video && stats.audio > last.audio) return { at: Date.now(), stats };
    last = stats;
    if (Date.now() > deadline) {
      throw new Error(`media is not flowing on ${page.url()}: last inbound bytes ${JSON.stringify(stats)}\n${pageLog(page)}`);
    }
    await delay(intervalMs);
  }
}

/** Resolves once inbound video stops growing: the fault really cut the media. */
export async function waitForMediaStopped(
  page: Page,
  { timeoutMs = 20_000, intervalMs = 500 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = await mediaStats(page);
  for (;;) {
    await delay(intervalMs);
    const stats = await mediaStats(page);
    if (stats.video === last.video) return;
    last = stats;
    if (Date.now() > deadline) throw new Error(`media kept flowing on ${page.url()}`);
  }
}
