/**
 * The connection to the server's `/inspect` Socket.IO namespace. Every `on…` returns the function that
 * unsubscribes, and requests that the server answers with an ack resolve to their payload or throw a
 * `FeedError` carrying the server's sentence.
 */
import { io, type Socket } from 'socket.io-client';
import {
  INSPECT_NAMESPACE,
  parseInspectorAck,
  parseInspectorPush,
  type Ack,
  type InspectorPush,
  type InspectorPushName,
  type InspectorToServerEvents,
  type LiveList,
  type Replay,
  type ServerToInspectorEvents,
  type StoredHistory,
  type TimelineEntry,
} from '@callchart/machines';

const ACK_TIMEOUT_MS = 10_000;

export type FeedStatus =
  | { kind: 'connecting' }
  | { kind: 'connected' }
  | { kind: 'reconnecting'; attempt: number }
  /** The server refused the token (`unauthorized`) or the account (`forbidden`); no retry will help. */
  | { kind: 'refused'; reason: 'unauthorized' | 'forbidden' }
  | { kind: 'closed' };

export class FeedError extends Error {
  override readonly name = 'FeedError';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

type Unsubscribe = () => void;

export interface Feed {
  readonly status: FeedStatus;
  onStatus(listener: (status: FeedStatus) => void): Unsubscribe;
  /** Called on connect and whenever the server's list of live requests changes; in a cluster, every node's. */
  onLiveList(listener: (list: LiveList) => void): Unsubscribe;
  onReplay(listener: (replay: Replay) => void): Unsubscribe;
  onEntry(listener: (entry: TimelineEntry) => void): Unsubscribe;
  /** Asks for a replay of the request followed by its live entries; the server forgets this on disconnect. */
  subscribe(requestId: string): Promise<void>;
  unsubscribe(requestId: string): void;
  history(callId: string): Promise<StoredHistory>;
  close(): void;
}

function unwrap<T extends object>(reply: Ack<T>): T {
  if (!reply.ok) throw new FeedError(reply.error.message, reply.error.code);
  return reply;
}

export function openFeed(token: string, origin = ''): Feed {
  const socket: Socket<ServerToInspectorEvents, InspectorToServerEvents> = io(`${origin}${INSPECT_NAMESPACE}`, {
    auth: { token },
    transports: ['websocket'],
  });
  let status: FeedStatus = { kind: 'connecting' };
  const statusListeners = new Set<(status: FeedStatus) => void>();
  const setStatus = (next: FeedStatus) => {
    status = next;
    for (const listener of statusListeners) listener(next);
  };

  socket.on('connect', () => setStatus({ kind: 'connected' }));
  socket.on('disconnect', () => {
    // After a close of our own, or a refusal already reported, there is nothing to wait for.
    if (status.kind === 'closed' || status.kind === 'refused') return;
    if (socket.active) setStatus({ kind: 'reconnecting', attempt: 0 });
  });
  socket.io.on('reconnect_attempt', (attempt) => {
    if (status.kind !== 'closed') setStatus({ kind: 'reconnecting', attempt });
  });
  socket.on('connect_error', (error) => {
    // A refusal by the namespace's middleware is final: socket.io-client does not retry it either.
    if (error.message === 'unauthorized' || error.message === 'forbidden') {
      setStatus({ kind: 'refused', reason: error.message });
    } else if (status.kind !== 'reconnecting') {
      setStatus({ kind: 'reconnecting', attempt: 0 });
    }
  });

  const listen = <E extends InspectorPushName>(event: E, listener: (payload: InspectorPush<E>) => void): Unsubscribe => {
    // Checked like every payload of the protocol: a push that is not what the schema says is dropped, not shown.
    const checked = (payload: unknown) => {
      const parsed = parseInspectorPush(event, payload);
      if (parsed.ok) listener(parsed.data);
      else console.warn('[callchart] inspector feed dropped a push', event, parsed.error.message);
    };
    // socket.io-client's listener types do not narrow through a generic event name; `checked` takes the
    // payload as unknown and parses it, so it listens through the socket's untyped view.
    const untyped: Socket = socket;
    const name: string = event;
    untyped.on(name, checked);
    return () => {
      untyped.off(name, checked);
    };
  };

  return {
    get status() {
      return status;
    },
    onStatus(listener) {
      statusListeners.add(listener);
      return () => {
        statusListeners.delete(listener);
      };
    },
    onLiveList: (listener) => listen('inspect.calls', listener),
    onReplay: (listener) => listen('inspect.replay', listener),
    onEntry: (listener) => listen('inspect.entry', listener),
    async subscribe(requestId) {
      unwrap(parseInspectorAck('inspect.subscribe', await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('inspect.subscribe', { requestId })));
    },
    unsubscribe(requestId) {
      // Nothing to undo while disconnected: the server dropped the subscription with the socket.
      if (socket.connected) socket.emit('inspect.unsubscribe', { requestId }, () => {});
    },
    async history(callId) {
      return unwrap(parseInspectorAck('inspect.history', await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('inspect.history', { callId })));
    },
    close() {
      setStatus({ kind: 'closed' });
      statusListeners.clear();
      socket.disconnect();
    },
  };
}
