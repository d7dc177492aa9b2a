/**
 * The switch to Stately's hosted inspector, for developers who are online: with it on, a page also sends its
 * machines to Stately's inspector window (`createBrowserInspector`) beside our own `/inspect`. It is asked for
 * per page, with `?inspect=stately` in the page's address or `localStorage['callchart.inspect'] = 'stately'`,
 * and it is off otherwise. The package is loaded only when asked for, so a page that does not ask never
 * fetches or runs it.
 *
 * What goes to Stately is sanitized as what goes to our server is: no session descriptions, no tokens.
 */
import type { InspectionEvent, Observer } from 'xstate';
import { sanitize, sanitizeEvent } from '@callchart/machines';

export const STATELY_SWITCH = { param: 'inspect', storageKey: 'callchart.inspect', value: 'stately' } as const;

/** Whether this page asked for Stately's inspector. */
export function statelyInspectorRequested(href: string, storage?: Pick<Storage, 'getItem'> | null): boolean {
  let fromAddress: string | null = null;
  try {
    fromAddress = new URL(href).searchParams.get(STATELY_SWITCH.param);
  } catch {
    // An unreadable address asks for nothing.
  }
  if (fromAddress === STATELY_SWITCH.value) return true;
  try {
    return storage?.getItem(STATELY_SWITCH.storageKey) === STATELY_SWITCH.value;
  } catch {
    // Storage can be off limits (a sandboxed frame, privacy settings); then only the address counts.
    return false;
  }
}

/** The shape of what the Stately inspector sends; only the parts that can carry secrets are touched. */
interface StatelyEvent {
  type: string;
  event?: unknown;
  snapshot?: unknown;
  definition?: string;
}

/** Stately's events with every event and snapshot context run through our sanitizer. */
export function sanitizeForStately<E extends StatelyEvent>(event: E): E {
  const out: E = { ...event };
  if (isEventObject(event.event)) out.event = sanitizeEvent(event.event);
  if (event.snapshot && typeof event.snapshot === 'object') {
    const snapshot = event.snapshot as Record<string, unknown>;
    out.snapshot = { ...snapshot, context: sanitize(snapshot.context), ...('input' in snapshot ? { input: sanitize(snapshot.input) } : {}) };
  }
  return out;
}

function isEventObject(value: unknown): value is { type: string } {
  return typeof value === 'object' && value !== null && typeof (value as { type?: unknown }).type === 'string';
}

/** Opens Stately's inspector window and returns the observer to give the client as its `inspect`. */
export async function openStatelyInspector(): Promise<Observer<InspectionEvent>> {
  const { createBrowserInspector } = await import('@statelyai/inspect');
  return createBrowserInspector({ serialize: sanitizeForStately }).inspect;
}

let opening: Promise<Observer<InspectionEvent> | undefined> | null = null;

/**
 * The `inspect` a page's client should get: Stately's observer when the page asked for it, else none. One
 * inspector window per page, however many clients the page creates (a widget renewing its session, say).
 */
export function inspectorForPage(): Promise<Observer<InspectionEvent> | undefined> {
  if (typeof window === 'undefined') return Promise.resolve(undefined);
  let storage: Storage | null = null;
  try {
    storage = window.localStorage;
  } catch {
    // See statelyInspectorRequested: without storage only the address counts.
  }
  if (!statelyInspectorRequested(window.location.href, storage)) return Promise.resolve(undefined);
  opening ??= openStatelyInspector().catch((error: unknown) => {
    // A developer asked for it, so say why it is missing; the call itself does not depend on it.
    console.warn('[callchart] Stately inspector could not be opened', error);
    return undefined;
  });
  return opening;
}
