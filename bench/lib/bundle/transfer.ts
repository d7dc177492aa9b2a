/**
 * What a visitor's browser really downloads for the widget: the demo page opened in Chromium from the real
 * server, and the widget's requests read from the page's own Resource Timing (`transferSize`: headers and
 * the compressed body, as they came over the wire), once the call button shows and again once a click has
 * fetched what a call needs.
 */
import type { Browser, Page } from 'playwright-core';
import { newPerson, openPage } from '../../../test/support/browser.ts';

export interface Transfer {
  /** Bytes over the wire, headers included. */
  transferred: number;
  /** The response bodies as sent (compressed). */
  encoded: number;
  /** The bodies once decoded. */
  decoded: number;
  files: { path: string; transferred: number; encoded: number; decoded: number }[];
}

export interface WidgetTransfer {
  beforeClick: Transfer;
  afterClick: Transfer;
}

// Where the widget's requests go: the loader and the modules beside it.
const WIDGET_PATH = /^\/widget(\.js|\/)/;

async function widgetResources(page: Page): Promise<Transfer> {
  const entries = await page.evaluate(() =>
    performance.getEntriesByType('resource').map((entry) => {
      const resource = entry as PerformanceResourceTiming;
      return { url: resource.name, transferred: resource.transferSize, encoded: resource.encodedBodySize, decoded: resource.decodedBodySize };
    }),
  );
  const files = entries
    .filter((entry) => WIDGET_PATH.test(new URL(entry.url).pathname))
    .map(({ url, ...sizes }) => ({ path: new URL(url).pathname, ...sizes }));
  const sum = (key: 'transferred' | 'encoded' | 'decoded') => files.reduce((total, file) => total + file[key], 0);
  return { transferred: sum('transferred'), encoded: sum('encoded'), decoded: sum('decoded'), files };
}

/** Opens `url` with a cold cache, measures, clicks the call button, waits for the call's code, measures again. */
export async function measureWidgetTransfer(browser: Browser, url: string): Promise<WidgetTransfer> {
  const context = await newPerson(browser);
  try {
    const page = await openPage(context, url);
    const call = page.getByRole('button', { name: 'Call an agent' });
    await call.waitFor({ timeout: 20_000 });
    const beforeClick = await widgetResources(page);
    await call.click();
    // The call's code is fetched when the call is asked for; it has landed once a module beyond those before the click has.
    await page.waitForFunction(
      (known) => performance.getEntriesByType('resource').some((entry) => entry.name.includes('/widget/assets/') && !known.includes(new URL(entry.name).pathname)),
      beforeClick.files.map((file) => file.path),
      { timeout: 20_000 },
    );
    await page.waitForLoadState('networkidle');
    return { beforeClick, afterClick: await widgetResources(page) };
  } finally {
    await context.close();
  }
}
