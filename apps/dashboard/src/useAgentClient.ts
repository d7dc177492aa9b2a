/** The agent's client for one login: created with the token, logged in at once, stopped when the page leaves it. */
import { useEffect, useState } from 'react';
import { createAgentClient, inspectorForPage, type AgentClient } from '@callchart/client';

/** `window.callchart`, for developers in the console and for browser tests. */
export interface CallchartGlobal {
  call: AgentClient['call'];
  signaling: AgentClient['signaling'];
  getStats: () => Promise<RTCStatsReport> | undefined;
}

function expose(client: AgentClient): CallchartGlobal {
  const value: CallchartGlobal = { call: client.call, signaling: client.signaling, getStats: () => client.peerConnection?.getStats() };
  Object.assign(window, { callchart: value });
  return value;
}

export function useAgentClient(token: string): AgentClient | null {
  const [client, setClient] = useState<AgentClient | null>(null);

  useEffect(() => {
    let current: AgentClient | null = null;
    let exposed: CallchartGlobal | null = null;
    let cancelled = false;
    // Resolves at once unless the page asked for Stately's inspector (see docs/inspector.md).
    void inspectorForPage().then((inspect) => {
      if (cancelled) return;
      current = createAgentClient({
        url: location.origin,
        token,
        rtc: {
          RTCPeerConnection: window.RTCPeerConnection,
          getUserMedia: navigator.mediaDevices ? (constraints) => navigator.mediaDevices.getUserMedia(constraints) : undefined,
        },
        onError: (error) => console.warn(`[callchart] ${error.message}`, error.details),
        ...(inspect ? { inspect } : {}),
      });
      current.call.send({ type: 'login' });
      exposed = expose(current);
      setClient(current);
    });
    return () => {
      cancelled = true;
      current?.stop();
      if (exposed && (window as { callchart?: CallchartGlobal }).callchart === exposed) Reflect.deleteProperty(window, 'callchart');
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
