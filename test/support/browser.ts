/**
 * Browser end-to-end support: Debian's Chromium driven by playwright-core with fake camera and microphone,
 * and the media checks every scenario makes. No browser is ever downloaded; `npm test` installs Debian's
 * Chromium first (scripts/ensure-system-packages.sh).
 */
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import type { NetNamespace } from './netns.ts';

// The second path skips Debian's wrapper script, which only adds flags from /etc/chromium.d.
const CHROMIUM_PATHS = ['/usr/lib/chromium/chromium', '/usr/bin/chromium'];

export function chromiumPath(): string {
  const found = CHROMIUM_PATHS.find((candidate) => existsSync(candidate));
  if (!found) {
    throw new Error(
      `Chromium is not installed (none of ${CHROMIUM_PATHS.join(', ')} exists). The browser suite drives ` +
        "Debian's Chromium and never downloads one; `npm test` installs it with apt-get (apt-get install -y chromium).",
    );
  }
  return found;
}

const OUR_DISABLED_FEATURES = [
  // Host candidates stay plain 127.0.0.1 addresses instead of mDNS names nothing here can resolve.
  'WebRtcHideLocalIpsWithMdns',
];

// No DNS at all: every test address is an IP literal, and nothing may leave the machine. Chromium maps
// IP literals through these rules too, so every address a page is served from must be excluded.
const hostResolverRules = (addresses: string[]) =>
  `--host-resolver-rules=MAP * ~NOTFOUND , ${addresses.map((address) => `EXCLUDE ${address}`).join(' , ')}`;

const COMMON_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
];

const BASE_ARGS = [...COMMON_ARGS, hostResolverRules(['127.0.0.1'])];

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

async function mergedDisableFeatures(): Promise<{ args: string[]; ignoreDefaultArgs?: string[] }> {
  const theirs = await playwrightDisableFeatures();
  const features = new Set([...(theirs ? theirs.slice('--disable-features='.length).split(',') : []), ...OUR_DISABLED_FEATURES]);
  return {
    args: [`--disable-features=${[...features].filter(Boolean).join(',')}`],
    ...(theirs ? { ignoreDefaultArgs: [theirs] } : {}),
  };
}

export async function launchBrowser(): Promise<Browser> {
  const { args, ...rest } = await mergedDisableFeatures();
  return chromium.launch({ executablePath: chromiumPath(), args: [...BASE_ARGS, ...args], ...rest });
}

/**
 * Chromium inside a network namespace, so taking the namespace's link down is a whole network outage
 * for it alone. Pages from the host side's address are not a secure context (no `mediaDevices`), so
 * each origin in `secureOrigins` is treated as one. Playwright talks to the browser over a pipe, which
 * the wrapper hands on by exec'ing, so nothing of playwright's needs to reach into the namespace.
 */
export async function launchBrowserIn(ns: NetNamespace, { secureOrigins = [] }: { secureOrigins?: string[] } = {}): Promise<Browser> {
  const { args, ...rest } = await mergedDisableFeatures();
  const dir = mkdtempSync(path.join(tmpdir(), 'callchart-netns-browser-'));
  const wrapper = path.join(dir, 'chromium');
  const quote = (value: string) => `'${value.replaceAll("'", "'\\''")}'`;
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${quote(ns.name)} ${quote(chromiumPath())} "$@"\n`);
  chmodSync(wrapper, 0o755);
  try {
    const browser = await chromium.launch({
      executablePath: wrapper,
      args: [
        ...COMMON_ARGS,
        hostResolverRules(['127.0.0.1', ns.hostAddress]),
        ...(secureOrigins.length > 0 ? [`--unsafely-treat-insecure-origin-as-secure=${secureOrigins.join(',')}`] : []),
        ...args,
      ],
      ...rest,
    });
    browser.once('disconnected', () => rmSync(dir, { recursive: true, force: true }));
    return browser;
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
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
