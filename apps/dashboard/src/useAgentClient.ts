/** The agent's client for one login: created with the token, logged in at once, stopped when the page leaves it. */
import { useEffect, useState } from 'react';
import { createAgentClient, exposeOnPage, inspectorForPage, pageRtc, warnOnConsole, type AgentClient } from '@callchart/client';

export function useAgentClient(token: string): AgentClient | null {
  const [client, setClient] = useState<AgentClient | null>(null);

  useEffect(() => {
    let current: AgentClient | null = null;
    let unexpose: (() => void) | null = null;
    let cancelled = false;
    // Resolves at once unless the page asked for Stately's inspector (see docs/inspector.md).
    void inspectorForPage().then((inspect) => {
      if (cancelled) return;
      current = createAgentClient({
        url: location.origin,
        token,
        rtc: pageRtc(),
        onError: warnOnConsole,
        ...(inspect ? { inspect } : {}),
      });
      current.call.send({ type: 'login' });
      unexpose = exposeOnPage(current);
      setClient(current);
    });
    return () => {
      cancelled = true;
      current?.stop();
      unexpose?.();
    };
  }, [token]);

  return client;
}

/** Resolves once the signaling outbox is empty (or after `timeoutMs`), so a last message leaves before the socket closes. */
export function outboxDrained(client: AgentClient, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    const empty = () => client.signaling.getSnapshot().context.outbox.length === 0;
    if (empty()) return resolve();
    const timer = setTimeout(done, timeoutMs);
    const subscription = client.signaling.subscribe(() => {
      if (empty()) done();
    });
    function done() {
      clearTimeout(timer);
      subscription.unsubscribe();
      resolve();
    }
  });
}
