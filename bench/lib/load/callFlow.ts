/**
 * What every simulated client does for its call, signaling only: an agent accepts whatever rings, a visitor
 * asks for a call, and both legs report `call.media connected` when the call is accepted (and again after a
 * resume, as the protocol asks of a resumed client). No offer, answer or media: the server's part of a call
 * is its machines and rooms, and those are what the load benchmarks load.
 */
import type { ClientEventName, ClientPayload, ServerEventName, ServerPayload } from '@callchart/machines';

export type AckReply = { ok: true } | { ok: false; error: { code: string; message?: string } };

/** One simulated client, whichever transport drives it. */
export interface Party {
  kind: 'agent' | 'visitor';
  id: string;
  send<E extends ClientEventName>(event: E, payload: ClientPayload<E>, onAck?: (ack: AckReply & Record<string, unknown>) => void): void;
  on<E extends ServerEventName>(event: E, handler: (payload: ServerPayload<E>) => void): void;
}

export interface CallCounters {
  rings: number;
  acceptsRefused: number;
  callsAccepted: number;
  /** Legs whose `call.media connected` the server acknowledged. */
  legsConnected: number;
  requestsRefused: number;
  routingEnded: number;
  callsEnded: number;
  /** Refusals by protocol error code. */
  errors: Record<string, number>;
}

export const newCounters = (): CallCounters => ({ rings: 0, acceptsRefused: 0, callsAccepted: 0, legsConnected: 0, requestsRefused: 0, routingEnded: 0, callsEnded: 0, errors: {} });

export interface LegState {
  callId: string | null;
  connected: boolean;
  /** Settles the visitor's pending `requestCall`. */
  settle: ((outcome: 'connected' | 'failed') => void) | null;
}

function countError(counters: CallCounters, ack: AckReply) {
  if (ack.ok) return;
  counters.errors[ack.error.code] = (counters.errors[ack.error.code] ?? 0) + 1;
}

/** Wires a party to take part in calls; returns its leg's state. */
export function followCalls(party: Party, counters: CallCounters): LegState {
  const leg: LegState = { callId: null, connected: false, settle: null };
  const reportMedia = (callId: string) =>
    party.send('call.media', { callId, state: 'connected' }, (ack) => {
      countError(counters, ack);
      if (!ack.ok || leg.callId !== callId) return leg.settle?.('failed');
      if (!leg.connected) counters.legsConnected++;
      leg.connected = true;
      leg.settle?.('connected');
    });
  if (party.kind === 'agent') {
    party.on('agent.ring', ({ requestId }) => {
      counters.rings++;
      party.send('agent.accept', { requestId }, (ack) => {
        countError(counters, ack);
        if (!ack.ok) counters.acceptsRefused++;
      });
    });
  }
  party.on('call.accepted', ({ callId }) => {
    counters.callsAccepted++;
    if (leg.connected) counters.legsConnected--;
    leg.callId = callId;
    leg.connected = false;
    reportMedia(callId);
  });
  party.on('session.resumed', ({ call }) => {
    if (call) {
      leg.callId = call.callId;
      reportMedia(call.callId);
    }
  });
  party.on('call.ended', ({ callId }) => {
    if (callId !== leg.callId) return;
    counters.callsEnded++;
    leg.callId = null;
    if (leg.connected) counters.legsConnected--;
    leg.connected = false;
  });
  party.on('routing.ended', () => {
    counters.routingEnded++;
    leg.settle?.('failed');
  });
  return leg;
}

/** A visitor asks for a call; resolves when its own leg is connected, or failed, or `timeoutMs` passed. */
export function requestCall(party: Party, leg: LegState, counters: CallCounters, timeoutMs: number): Promise<'connected' | 'failed' | 'timeout'> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done('timeout'), timeoutMs);
    function done(outcome: 'connected' | 'failed' | 'timeout') {
      clearTimeout(timer);
      leg.settle = null;
      resolve(outcome);
    }
    leg.settle = done;
    party.send('visitor.request', { pool: 'support' }, (ack) => {
      countError(counters, ack);
      if (!ack.ok) {
        counters.requestsRefused++;
        done('failed');
      }
    });
  });
}

/** Runs `task` over `items` with at most `limit` in flight; stops starting new ones once `stop()` says so. */
export async function pooled<T, R>(items: readonly T[], limit: number, task: (item: T) => Promise<R>, stop: () => boolean = () => false): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length && !stop()) {
      const index = next++;
      results[index] = await task(items[index]!);
    }
  });
  await Promise.all(lanes);
  return results;
}
