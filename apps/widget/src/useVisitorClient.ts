/**
 * Starts the visitor's client once a session token is in hand, and replaces it when the server stops
 * accepting the token (it expired while the page sat open): the signaling machine never retries bad
 * credentials, so a fresh session is the only way back.
 */
import { useCallback, useEffect, useState } from 'react';
import { createVisitorClient, exposeOnPage, inspectorForPage, pageRtc, warnOnConsole, type VisitorClient } from '@callchart/client';
import type { VisitorPlainKey } from '@callchart/machines/locales';
import { fetchVisitorSession, SessionError } from './session.ts';

export type ClientBoot =
  | { status: 'starting' }
  | { status: 'ready'; client: VisitorClient; renew: () => void }
  | { status: 'failed'; message: VisitorPlainKey; retry: () => void };

export interface VisitorClientConfig {
  origin: string;
  pool: string;
  visitorName?: string | undefined;
}

export function useVisitorClient({ origin, pool, visitorName }: VisitorClientConfig): ClientBoot {
  const [generation, setGeneration] = useState(0);
  const [boot, setBoot] = useState<ClientBoot>({ status: 'starting' });
  const restart = useCallback(() => setGeneration((n) => n + 1), []);

  useEffect(() => {
    let client: VisitorClient | null = null;
    let cancelled = false;
    setBoot({ status: 'starting' });
    // The inspector resolves at once unless the page asked for Stately's (see docs/inspector.md).
    Promise.all([fetchVisitorSession(origin, visitorName), inspectorForPage()]).then(
      ([session, inspect]) => {
        if (cancelled) return;
        client = createVisitorClient({
          url: origin,
          token: session.token,
          pool,
          rtc: pageRtc(),
          onError: warnOnConsole,
          ...(inspect ? { inspect } : {}),
        });
        const current = client;
        exposeOnPage(current);
        setBoot({ status: 'ready', client: current, renew: restart });
      },
      (error: unknown) => {
        if (cancelled) return;
        console.warn('[callchart] visitor session failed', error);
        const message = error instanceof SessionError ? error.text : 'visitor.error.unavailable';
        setBoot({ status: 'failed', message, retry: restart });
      },
    );
    return () => {
      cancelled = true;
      if (client) {
        // Leaving the page or replacing the client: a call in progress is hung up, not left to time out.
        client.call.send({ type: 'hangup' });
        client.stop();
      }
    };
  }, [origin, pool, visitorName, generation, restart]);

  return boot;
}
