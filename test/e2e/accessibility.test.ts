/**
 * The widget and the dashboard for people who use a keyboard, a screen reader or a small screen. A
 * visitor calls from the keyboard alone and Ada answers and ends it from hers; after every change of
 * state focus is on the control the new state is about, axe finds nothing serious in any state, and the
 * dashboard's header and primary control fit the viewport at both sizes with the state's message shown.
 * The widget's failures (nobody free, a site the server refuses) are checked the same way.
 */
import type { Locator, Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { axeCheck, boxAtTop, focused, headerLayout, insideViewport, tabTo, VIEWPORTS, type AxeSummary, type FocusedElement } from '../support/accessibility.ts';
import { newPerson, openPage, waitForMediaFlowing } from '../support/browser.ts';
import { browserSuite } from '../support/browser-suite.ts';
import { TEXT } from '../support/call-steps.ts';
import { openVisitor, shopPage, status, waitForText, type Person } from '../support/e2e.ts';
import { DEMO } from '../support/server.ts';

const FOCUS_MOVES_MS = 5_000;

/** Resolves once focus is on the control named `name` (inside the widget's shadow root when `inWidget`). */
async function focusIsOn(page: Page, name: string, { inWidget }: { inWidget: boolean }): Promise<void> {
  await expect.poll(() => focused(page), { timeout: FOCUS_MOVES_MS }).toMatchObject({ tag: 'button', name, inShadow: inWidget } satisfies Partial<FocusedElement>);
}

/** The names of the controls `presses` presses of `key` go through. */
async function tabOrder(page: Page, key: 'Tab' | 'Shift+Tab', presses: number): Promise<string[]> {
  const names: string[] = [];
  for (let press = 0; press < presses; press++) {
    await page.keyboard.press(key);
    names.push((await focused(page))?.name ?? '(nothing)');
  }
  return names;
}

const signalingState = (page: Page) =>
  page.evaluate(() => {
    const signaling = (window as unknown as { callchart?: { signaling?: { getSnapshot(): { value: unknown } } } }).callchart?.signaling;
    return JSON.stringify(signaling?.getSnapshot().value ?? null);
  });

async function signalingIs(page: Page, state: RegExp, timeoutMs: number): Promise<void> {
  await expect.poll(() => signalingState(page), { timeout: timeoutMs }).toMatch(state);
}

/**
 * At each viewport size, with `message` showing, the control is wholly on screen without scrolling; on
 * the dashboard the header also stays one line. Leaves the page at the first size.
 */
async function layoutHolds(page: Page, control: Locator, message: string | RegExp, { dashboard }: { dashboard: boolean }): Promise<void> {
  for (const viewport of [...VIEWPORTS].reverse()) {
    await page.setViewportSize(viewport);
    await status(page, message);
    const at = `${viewport.width}×${viewport.height} on ${page.url()}`;
    const placed = await boxAtTop(page, control);
    expect(insideViewport(placed), `the primary control lies inside the viewport at ${at}: ${JSON.stringify(placed)}`).toBe(true);
    if (!dashboard) continue;
    const header = await headerLayout(page);
    expect(header.height, `the header is one line at ${at}: ${JSON.stringify(header)}`).toBeLessThanOrEqual(header.oneLine + 0.5);
    expect(Math.max(...header.centres) - Math.min(...header.centres), `the header's items share one line at ${at}: ${JSON.stringify(header)}`).toBeLessThanOrEqual(1);
    expect(header.overflow, `nothing in the header reaches past its edge at ${at}`).toBeLessThanOrEqual(0);
  }
}

/** What one screen shows in a state: its status message, and the control that has focus. */
interface OnScreen {
  page: Page;
  says: string | RegExp;
  focus: string;
  within?: number;
}

describe('accessibility of the widget and the dashboard', () => {
  // The relay is stopped on purpose in one scenario; the suite has it running again for the next.
  const suite = browserSuite();
  const summaries: AxeSummary[] = [];

  afterAll(() => {
    console.log(
      `axe, per state (violated nodes by impact [rules]; rules passed; rules to review; widget nodes passed):\n${summaries
        .map(
          ({ state, violations, violated, toReview, passes, widgetNodesPassed }) =>
            `  ${state}: ${JSON.stringify(violations)} [${violated.join(', ')}]; ${passes} passed; to review [${toReview.join(', ')}]; ${widgetNodesPassed} widget nodes`,
        )
        .join('\n')}`,
    );
  });

  const axe = async (page: Page, state: string, options?: { widget?: boolean }) => {
    summaries.push(await axeCheck(page, state, options));
  };

  /** Ada's dashboard, then the visitor's widget, show `state`: each its message with focus on its control; then axe checks both. */
  async function bothShow(state: string, ada: OnScreen, visitor: OnScreen): Promise<void> {
    await status(ada.page, ada.says, ada.within);
    await focusIsOn(ada.page, ada.focus, { inWidget: false });
    await status(visitor.page, visitor.says, visitor.within);
    await focusIsOn(visitor.page, visitor.focus, { inWidget: true });
    await axe(visitor.page, `widget ${state}`, { widget: true });
    await axe(ada.page, `dashboard ${state}`);
  }

  it('takes a call from the keyboard alone, with focus on the primary control after every change and nothing serious for axe', async () => {
    // The visitor waits in the queue until Ada logs in, and the ring lasts while both pages are checked.
    const app = await suite.startApp({ MAX_QUEUE_WAIT_MS: '30000', RING_TIMEOUT_MS: '30000', AGENT_GRACE_MS: '20000' });

    const visitor = await openVisitor(suite.browser, app);
    // The host page loaded with the widget on it: focus stays where the page put it.
    expect(await focused(visitor.page)).toBeNull();
    await axe(visitor.page, 'widget idle', { widget: true });

    await tabTo(visitor.page, 'Call an agent');
    await visitor.page.keyboard.press('Enter');
    await status(visitor.page, TEXT.queued(1));
    await focusIsOn(visitor.page, 'Cancel', { inWidget: true });
    await axe(visitor.page, 'widget queued', { widget: true });

    const context = await newPerson(suite.browser);
    const agentPage = await openPage(context, `${app.url}/agent`);
    const ada: Person = { context, page: agentPage };
    await waitForText(ada.page, ada.page.getByRole('button'), 'Log in', 15_000);
    await axe(ada.page, 'dashboard login');
    // The email field has focus on arrival; the rest is typing, Tab and Enter.
    await ada.page.keyboard.type(DEMO.ada.email);
    await ada.page.keyboard.press('Tab');
    await ada.page.keyboard.type('not-the-password');
    await ada.page.keyboard.press('Enter');
    await ada.page.getByRole('alert').getByText(/\S/).waitFor();
    await axe(ada.page, 'dashboard login error');
    await ada.page.keyboard.press('ControlOrMeta+A');
    await ada.page.keyboard.type(DEMO.ada.password);
    await ada.page.keyboard.press('Enter');

    // Logged in, Ada is available and the queued visitor rings her at once.
    await bothShow('ringing', { page: ada.page, says: `Incoming call from Visitor`, focus: 'Accept', within: 15_000 }, { page: visitor.page, says: TEXT.ringing('ada'), focus: 'Cancel' });
    await layoutHolds(ada.page, ada.page.getByRole('button', { name: 'Accept' }), 'Incoming call from Visitor', { dashboard: true });
    await focusIsOn(ada.page, 'Accept', { inWidget: false });

    // Without the relay the accepted call stays in Connecting, with its message on both screens.
    await suite.turn.stop();
    await ada.page.keyboard.press('Space');
    await bothShow('connecting', { page: ada.page, says: 'Connecting to Visitor…', focus: 'Hang up' }, { page: visitor.page, says: TEXT.connecting('ada'), focus: 'Hang up' });
    await layoutHolds(ada.page, ada.page.getByRole('button', { name: 'Hang up' }), 'Connecting to Visitor…', { dashboard: true });
    await layoutHolds(visitor.page, visitor.page.getByRole('button', { name: 'Hang up' }), TEXT.connecting('ada'), { dashboard: false });
    await suite.turn.start();
    await Promise.all([waitForMediaFlowing(visitor.page), waitForMediaFlowing(ada.page)]);
    await axe(visitor.page, 'widget in call', { widget: true });
    await axe(ada.page, 'dashboard in call');
    await focusIsOn(visitor.page, 'Hang up', { inWidget: true });
    await focusIsOn(ada.page, 'Hang up', { inWidget: false });
    // The videos are no tab stops: backwards from Hang up come the other controls, and forwards again.
    expect(await tabOrder(visitor.page, 'Shift+Tab', 2)).toEqual(['Mute', 'Minimise video support']);
    expect(await tabOrder(visitor.page, 'Tab', 2)).toEqual(['Mute', 'Hang up']);
    expect(await tabOrder(ada.page, 'Shift+Tab', 1)).toEqual(['Log out']);
    expect(await tabOrder(ada.page, 'Tab', 1)).toEqual(['Hang up']);

    // The server goes: both keep the call, and the dashboard says it is reconnecting in its header.
    await app.kill();
    await Promise.all([signalingIs(visitor.page, /reconnecting/, 5_000), signalingIs(ada.page, /reconnecting/, 5_000)]);
    await waitForText(ada.page, ada.page.locator('header'), 'Connecting to server…');
    await axe(visitor.page, 'widget in call, server reconnecting', { widget: true });
    await axe(ada.page, 'dashboard in call, server reconnecting');
    for (const viewport of VIEWPORTS) {
      await ada.page.setViewportSize(viewport);
      const header = await headerLayout(ada.page);
      expect(header.height, `the header with its longest texts is one line at ${viewport.width}×${viewport.height}: ${JSON.stringify(header)}`).toBeLessThanOrEqual(header.oneLine + 0.5);
      expect(insideViewport(await boxAtTop(ada.page, ada.page.getByRole('button', { name: 'Hang up' })))).toBe(true);
    }
    await ada.page.setViewportSize(VIEWPORTS[0]);
    await app.crashAndRestart();
    await Promise.all([signalingIs(visitor.page, /connected/, 20_000), signalingIs(ada.page, /connected/, 20_000)]);
    await focusIsOn(visitor.page, 'Hang up', { inWidget: true });

    await visitor.page.keyboard.press('Enter');
    await status(visitor.page, 'The call has ended');
    await focusIsOn(visitor.page, 'Call an agent', { inWidget: true });
    await axe(visitor.page, 'widget ended', { widget: true });
    await status(ada.page, 'Visitor ended the call');
    await focusIsOn(ada.page, 'Available', { inWidget: false });
    await axe(ada.page, 'dashboard after the call');
    await layoutHolds(ada.page, ada.page.getByRole('button', { name: 'Available' }), 'Visitor ended the call', { dashboard: true });

    const history = ada.page.getByRole('region', { name: /history/i });
    await history.locator('tr[data-call-id]').first().waitFor({ timeout: 10_000 });
    await axe(ada.page, 'dashboard history');

    // Away and back from the keyboard: focus goes to the way back, and stays there.
    await focusIsOn(ada.page, 'Available', { inWidget: false });
    await ada.page.keyboard.press('Tab');
    await focusIsOn(ada.page, 'Away', { inWidget: false });
    await ada.page.keyboard.press('Enter');
    await ada.page.locator('[aria-pressed="true"]', { hasText: 'Away' }).waitFor();
    await focusIsOn(ada.page, 'Available', { inWidget: false });
    await axe(ada.page, 'dashboard away');
    await ada.page.keyboard.press('Enter');
    await ada.page.locator('[aria-pressed="true"]', { hasText: 'Available' }).waitFor();
    await focusIsOn(ada.page, 'Available', { inWidget: false });
  }, 90_000);

  it("says why the widget cannot call, from the keyboard, without taking the host page's focus, and minimises on Escape", async () => {
    const app = await suite.startApp({ ALLOWED_ORIGINS: 'https://shop.example', MAX_QUEUE_WAIT_MS: '3000' });

    // On the server's own page (always allowed) with nobody logged in: the queue gives up.
    const visitor = await openVisitor(suite.browser, app);
    await tabTo(visitor.page, 'Call an agent');
    await visitor.page.keyboard.press('Enter');
    await focusIsOn(visitor.page, 'Cancel', { inWidget: true });
    await status(visitor.page, TEXT.noAgents, 10_000);
    await focusIsOn(visitor.page, 'Retry', { inWidget: true });
    await axe(visitor.page, 'widget no agents', { widget: true });
    await layoutHolds(visitor.page, visitor.page.getByRole('button', { name: 'Retry' }), TEXT.noAgents, { dashboard: false });

    // The visitor asks again, then goes back to the host page while waiting: when the queue gives up
    // again, the widget says so but leaves focus where the visitor put it.
    await visitor.page.keyboard.press('Enter');
    await focusIsOn(visitor.page, 'Cancel', { inWidget: true });
    await visitor.page.keyboard.press('Shift+Tab');
    await visitor.page.keyboard.press('Shift+Tab');
    const onHostPage = { tag: 'button', name: 'Search', inShadow: false };
    expect(await focused(visitor.page)).toEqual(onHostPage);
    await status(visitor.page, TEXT.noAgents, 10_000);
    await visitor.page.getByRole('button', { name: 'Retry' }).waitFor();
    expect(await focused(visitor.page)).toEqual(onHostPage);
    await tabTo(visitor.page, 'Retry', 2);

    // Escape minimises, and leaves focus on the button that opens the panel again.
    const toggle = visitor.page.getByRole('button', { name: /video support/ });
    await visitor.page.keyboard.press('Escape');
    await focusIsOn(visitor.page, 'Open video support', { inWidget: true });
    expect(await toggle.getAttribute('aria-expanded')).toBe('false');
    expect(await visitor.page.getByRole('button', { name: 'Retry' }).isVisible()).toBe(false);
    await visitor.page.keyboard.press('Enter');
    expect(await toggle.getAttribute('aria-expanded')).toBe('true');
    await tabTo(visitor.page, 'Retry', 2);
    // No trap: Tab goes on out of the widget.
    await visitor.page.keyboard.press('Tab');
    expect((await focused(visitor.page))?.inShadow ?? false).toBe(false);

    // A site the server does not allow: the refusal is read out, and focus stays with the host page.
    const shopper = await openPage(await newPerson(suite.browser), await suite.page(shopPage(app)));
    const refused = 'Video calls are not enabled for this website.';
    await status(shopper, refused, 15_000);
    expect(await focused(shopper)).toBeNull();
    await axe(shopper, 'widget refused by origin', { widget: true });
    await layoutHolds(shopper, shopper.getByRole('button', { name: 'Retry' }), refused, { dashboard: false });
    // A retry the visitor asks for is refused again, and focus comes back to the new Retry button.
    const retry = shopper.getByRole('button', { name: 'Retry' });
    await tabTo(shopper, 'Retry');
    await retry.evaluate((button) => button.setAttribute('data-before-retry', ''));
    await shopper.keyboard.press('Enter');
    await expect
      .poll(() => retry.evaluate((button) => !button.hasAttribute('data-before-retry') && (button.getRootNode() as ShadowRoot).activeElement === button), { timeout: FOCUS_MOVES_MS })
      .toBe(true);
    await status(shopper, refused);
  }, 45_000);
});
