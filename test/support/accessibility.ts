/**
 * Accessibility checks for the browser scenarios: axe-core over a whole page (the widget's open shadow
 * root included), where keyboard focus is, moving it with Tab alone, and whether a layout holds in the
 * viewport without scrolling.
 */
import { AxeBuilder } from '@axe-core/playwright';
import type { Locator, Page } from 'playwright-core';
import { pageLog } from './browser.ts';

type AxeResults = Awaited<ReturnType<AxeBuilder['analyze']>>;
type NodeResult = AxeResults['passes'][number]['nodes'][number];

export interface AxeSummary {
  state: string;
  violations: Record<'critical' | 'serious' | 'moderate' | 'minor', number>;
  /** `impact rule-id` of each rule violated, and of each that axe could not decide. */
  violated: string[];
  toReview: string[];
  passes: number;
  incomplete: number;
  /** Nodes inside the widget's shadow root that some rule passed: proof that axe looked inside it. */
  widgetNodesPassed: number;
}

/** The widget's shadow host, as axe names it in the first step of a shadow-piercing target. */
async function shadowHostSelector(page: Page): Promise<string | null> {
  return page.evaluate(() => {
    const host = Array.from(document.body.children).find((element) => element.shadowRoot !== null);
    return host?.id ? `#${host.id}` : null;
  });
}

function insideShadowOf(host: string): (node: NodeResult) => boolean {
  // A node inside a shadow root is targeted by a list of selectors, from its host down.
  return (node) => node.target.some((step) => Array.isArray(step) && step.length > 1 && step[0] === host);
}

function summarise(state: string, results: AxeResults, widgetNodesPassed: number): AxeSummary {
  const violations = { critical: 0, serious: 0, moderate: 0, minor: 0 };
  for (const rule of results.violations) violations[rule.impact ?? 'minor'] += rule.nodes.length;
  return {
    state,
    violations,
    violated: results.violations.map((rule) => `${rule.impact} ${rule.id}`),
    toReview: results.incomplete.map((rule) => `${rule.impact} ${rule.id}`),
    passes: results.passes.length,
    incomplete: results.incomplete.length,
    widgetNodesPassed,
  };
}

/**
 * Runs axe over the page and returns its counts; throws with every serious or critical violation. With
 * `widget`, the widget's own controls must be among what passed, so a shadow root axe never entered
 * cannot pass for an accessible one.
 */
export async function axeCheck(page: Page, state: string, { widget = false }: { widget?: boolean } = {}): Promise<AxeSummary> {
  const results = await new AxeBuilder({ page }).analyze();
  let widgetNodesPassed = 0;
  if (widget) {
    const host = await shadowHostSelector(page);
    if (!host) throw new Error(`${state}: the page has no widget shadow host with an id\n${pageLog(page)}`);
    const inside = insideShadowOf(host);
    widgetNodesPassed = results.passes.reduce((sum, rule) => sum + rule.nodes.filter(inside).length, 0);
    const buttonsNamed = results.passes.find((rule) => rule.id === 'button-name')?.nodes.filter(inside).length ?? 0;
    if (buttonsNamed === 0) throw new Error(`${state}: axe passed no button inside the widget's shadow root (${host}); it did not look inside`);
  }
  const summary = summarise(state, results, widgetNodesPassed);
  const blocking = results.violations.filter((rule) => rule.impact === 'serious' || rule.impact === 'critical');
  if (blocking.length > 0) {
    const detail = blocking.map((rule) => `${rule.impact} ${rule.id}: ${rule.help}\n${rule.nodes.map((node) => `  ${JSON.stringify(node.target)} ${node.failureSummary ?? ''}`).join('\n')}`);
    throw new Error(`${state}: axe found serious or critical violations\n${detail.join('\n')}`);
  }
  return summary;
}

export interface FocusedElement {
  tag: string;
  /** The element's accessible text as a person would hear it: its aria-label, else its text. */
  name: string;
  /** Whether it sits inside a shadow root (the widget's). */
  inShadow: boolean;
}

/** The element holding keyboard focus, followed into shadow roots; null when nothing but the body has it. */
export function focused(page: Page): Promise<FocusedElement | null> {
  return page.evaluate(() => {
    let active = document.activeElement;
    let inShadow = false;
    while (active?.shadowRoot?.activeElement) {
      active = active.shadowRoot.activeElement;
      inShadow = true;
    }
    if (!active || active === document.body) return null;
    const name = (active.getAttribute('aria-label') ?? active.textContent ?? '').replace(/\s+/g, ' ').trim();
    return { tag: active.tagName.toLowerCase(), name, inShadow };
  });
}

/** Presses Tab until the focused element is named `name`, as a keyboard user would; fails after `maxPresses`. */
export async function tabTo(page: Page, name: string, maxPresses = 25): Promise<FocusedElement> {
  const seen: string[] = [];
  for (let press = 0; press < maxPresses; press++) {
    await page.keyboard.press('Tab');
    const now = await focused(page);
    seen.push(now ? `${now.tag} "${now.name}"` : '(nothing)');
    if (now?.name === name) return now;
  }
  throw new Error(`Tab never reached "${name}" on ${page.url()}; it went through ${seen.join(', ')}`);
}

/** The viewports the dashboard and the widget are laid out for. */
export const VIEWPORTS = [
  { width: 960, height: 720 },
  { width: 1280, height: 800 },
] as const;

export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** Where `locator` lies with the page scrolled to its top: focusing a control scrolls it into view, which must not count. */
export async function boxAtTop(page: Page, locator: Locator): Promise<{ box: Box; viewport: { width: number; height: number } }> {
  await page.evaluate(() => window.scrollTo(0, 0));
  const box = await locator.evaluate((element) => {
    const rect = element.getBoundingClientRect();
    return { x: rect.x, y: rect.y, width: rect.width, height: rect.height };
  });
  const viewport = await page.evaluate(() => ({ width: document.documentElement.clientWidth, height: document.documentElement.clientHeight }));
  return { box, viewport };
}

export function insideViewport({ box, viewport }: { box: Box; viewport: { width: number; height: number } }): boolean {
  return box.width > 0 && box.height > 0 && box.x >= 0 && box.y >= 0 && box.x + box.width <= viewport.width && box.y + box.height <= viewport.height;
}

export interface HeaderLayout {
  height: number;
  /** The height of one line of the header: its tallest item plus its vertical padding and border. */
  oneLine: number;
  /** Vertical centres of the header's items; all equal when they share one line. */
  centres: number[];
  /** How far the header's content reaches past its right edge. */
  overflow: number;
}

/** The dashboard's top bar: its items (brand, name, presence, log out) and its height. */
export function headerLayout(page: Page): Promise<HeaderLayout> {
  return page.locator('header.topbar').evaluate((header) => {
    const items = Array.from(header.querySelectorAll<HTMLElement>(':scope > .brand, :scope > .topbar-right > *'));
    const style = getComputedStyle(header);
    const chrome = ['paddingTop', 'paddingBottom', 'borderTopWidth', 'borderBottomWidth'].reduce((sum, key) => sum + parseFloat(style[key as 'paddingTop']), 0);
    const rects = items.map((item) => item.getBoundingClientRect());
    return {
      height: header.getBoundingClientRect().height,
      oneLine: Math.max(...rects.map((rect) => rect.height)) + chrome,
      centres: rects.map((rect) => Math.round((rect.top + rect.height / 2) * 10) / 10),
      overflow: header.scrollWidth - header.clientWidth,
    };
  });
}
