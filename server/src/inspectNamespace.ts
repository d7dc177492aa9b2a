/**
 * The `/inspect` Socket.IO namespace: the live inspector's feed, for agents with the inspector role only.
 * It lists the live requests and calls (again whenever a server actor moves), replays a request's recent timeline and then streams it, and
 * reads a finished call's transitions back from the store. On a node of a cluster it does all of this for
 * every node's requests, each listed with the node that runs it (see inspectCluster.ts).
 */
import type { Namespace, Socket } from 'socket.io';
import {
  INSPECT_NAMESPACE,
  inspectorEventSchemas as schemas,
  parseHandshakeAuth,
  type InspectorAckData,
  type InspectorEventName,
  type InspectorPayload,
  type InspectorPush,
  type InspectorPushName,
  type ProtocolError,
} from '@callchart/machines';
import { z } from 'zod/mini';
import { isInspector } from './agents.ts';
import type { Auth } from './auth.ts';
import { ClusterUnreachableError, InspectCluster } from './inspectCluster.ts';
import { historyEntries, type Inspection } from './inspection.ts';
import type { NodeReport } from './inspectNodes.ts';
import type { Logger } from './logger.ts';
import type { Store } from './store.ts';
import { storeRead, StoreUnavailableError } from './storeReads.ts';
import type { Switchboard } from './switchboard/index.ts';
import { firstIssue, issueFragment } from './validation.ts';

/** How long the list of live requests waits for more changes before it goes out again. */
const LIST_COALESCE_MS = 100;

type Reply = (reply: unknown) => void;

export interface InspectNamespaceOptions {
  /** The inspector's namespace speaks its own events, not the main namespace's. */
  io: { of(name: string): Namespace };
  auth: Auth;
  inspection: Inspection;
  /** What it lists of the live requests, and counts of them. */
  switchboard: Pick<Switchboard, 'live' | 'stats' | 'queuedCount'>;
  store: Store;
  logger: Logger;
  /** Whether clients report their own machines (INSPECT_CLIENTS), so the page can say why they are missing. */
  clientInspection: boolean;
  /** This node's id in a cluster, whose namespace then spans every node; null or absent in one process. */
  node?: string | null;
}

export interface InspectNamespace {
  /** Closes the inspector sockets of login sessions that logged out: a revoked token sees nothing more. */
  closeSessions(sessionIds: ReadonlySet<string>): void;
}

export function attachInspectNamespace(options: InspectNamespaceOptions): InspectNamespace {
  const { auth, inspection, switchboard, store, logger } = options;
  const namespace = options.io.of(INSPECT_NAMESPACE);
  const calls = (): InspectorPush<'inspect.calls'> => ({ requests: switchboard.live(), clientInspection: options.clientInspection });
  // Typed by the wire's push schemas: what goes out is what the inspector's feed checks it against.
  const push = <E extends InspectorPushName>(to: { emit(event: string, payload: unknown): unknown }, event: E, payload: InspectorPush<E>) => to.emit(event, payload);

  const own = (node: string): NodeReport => {
    const { requests, calls } = switchboard.stats();
    return { node, requests: switchboard.live(), gauges: { requests, calls, queued: switchboard.queuedCount(), sockets: namespace.server.engine.clientsCount } };
  };
  const cluster = options.node
    ? new InspectCluster({
        namespace,
        node: options.node,
        inspection,
        store,
        logger,
        own: () => own(options.node!),
        clientInspection: options.clientInspection,
        coalesceMs: LIST_COALESCE_MS,
      })
    : null;

  // A transition can move many requests at once (a restart, a queue advancing): one list per burst.
  let listTimer: NodeJS.Timeout | null = null;
  inspection.onServerChange(() => {
    if (cluster) return cluster.changed();
    if (listTimer !== null || namespace.sockets.size === 0) return;
    listTimer = setTimeout(() => {
      listTimer = null;
      push(namespace, 'inspect.calls', calls());
    }, LIST_COALESCE_MS);
    listTimer.unref();
  });

  /** As the main namespace does: why and from where, never the token. */
  const refuse = (socket: Socket, next: (error?: Error) => void, code: 'unauthorized' | 'forbidden' | 'store-unavailable', reason: string) => {
    logger.info({ code, reason, address: socket.handshake.address, origin: socket.handshake.headers.origin ?? null }, 'inspector socket refused');
    next(new Error(code));
  };

  namespace.use(async (socket, next) => {
    const parsed = parseHandshakeAuth(socket.handshake.auth);
    if (!parsed.ok) return refuse(socket, next, 'unauthorized', 'no-token');
    try {
      const { principal, session } = await auth.verifySession(parsed.data.token);
      if (principal.kind !== 'agent' || !isInspector(principal.roles)) return refuse(socket, next, 'forbidden', 'not-an-inspector');
      socket.data.inspector = principal.agentId;
      socket.data.session = session.id;
      next();
    } catch (error) {
      // The token may be good: the page is told to try again rather than that it was refused for good.
      if (error instanceof StoreUnavailableError) return refuse(socket, next, 'store-unavailable', 'revocations-unreadable');
      refuse(socket, next, 'unauthorized', 'token-invalid');
    }
  });

  namespace.on('connection', (socket: Socket) => {
    const subscriptions = new Map<string, () => void>();
    if (cluster) {
      cluster.opened();
      cluster.fresh().then(
        (list) => push(socket, 'inspect.calls', list),
        (error: unknown) => logger.warn({ err: error }, 'the cluster inspector list could not be sent'),
      );
    } else push(socket, 'inspect.calls', calls());

    const handlers: { [E in InspectorEventName]: (data: InspectorPayload<E>) => InspectorAckData<E> | Promise<InspectorAckData<E>> } = {
      'inspect.calls': () => (cluster ? cluster.fresh() : calls()),
      'inspect.subscribe': async ({ requestId }) => {
        if (cluster) {
          // Joined before the replay is asked for: whatever the owner sends after the replay reaches the room.
          await cluster.follow(socket, requestId);
          let found = false;
          try {
            found = await cluster.replayTo(requestId, socket.id);
          } finally {
            if (!found) await cluster.unfollow(socket, requestId);
          }
          if (!found) throw new InspectError({ code: 'not-found', message: 'There is no such live request; a finished call is read with inspect.history.', field: 'requestId' });
          return {};
        }
        // A subscription to a request that is not live would never hear anything; an ended one's story is in the store.
        if (!inspection.isLive(requestId)) {
          throw new InspectError({ code: 'not-found', message: 'There is no such live request; a finished call is read with inspect.history.', field: 'requestId' });
        }
        // Replay and subscription happen in one turn, so no entry falls between them.
        subscriptions.get(requestId)?.();
        push(socket, 'inspect.replay', { requestId, entries: inspection.timeline(requestId), actors: inspection.actorsOf(requestId) });
        subscriptions.set(
          requestId,
          inspection.subscribe(requestId, (entry) => push(socket, 'inspect.entry', entry)),
        );
        return {};
      },
      'inspect.unsubscribe': async ({ requestId }) => {
        if (cluster) await cluster.unfollow(socket, requestId);
        subscriptions.get(requestId)?.();
        subscriptions.delete(requestId);
        return {};
      },
      'inspect.history': async ({ callId }) => {
        const call = await storeRead(store.calls.get(callId));
        if (!call) throw new InspectError({ code: 'not-found', message: 'There is no such call.', field: 'callId' });
        // The whole request: how routing got to this call, and what became of it afterwards, beside the call itself.
        const events = await storeRead(store.events.forRequest(call.requestId));
        return { call: { id: call.id, requestId: call.requestId, state: call.state, endReason: call.endReason }, entries: historyEntries(events) };
      },
    };

    socket.onAny((event: string, payload: unknown, ...rest: unknown[]) => {
      const ack = [payload, ...rest].findLast((arg) => typeof arg === 'function') as Reply | undefined;
      const reply = (value: unknown) => ack?.(value);
      const fail = (error: ProtocolError) => {
        logger.warn({ inspector: socket.data.inspector as string, event: event in schemas ? event : '(unknown)', error }, 'rejected inspector event');
        reply({ ok: false, error });
      };
      if (!Object.hasOwn(schemas, event)) return fail({ code: 'unknown-event', message: 'There is no such inspector event.' });
      const name = event as InspectorEventName;
      // An event sent with only an ack callback has no payload; it counts as `{}`.
      const parsed = z.safeParse(schemas[name], typeof payload === 'function' || payload === undefined ? {} : payload, { error: issueFragment });
      if (!parsed.success) {
        const { field, fragment } = firstIssue(parsed.error);
        return fail(
          field
            ? { code: 'invalid-payload', message: `Field "${field}" ${fragment}.`, field }
            : { code: 'invalid-payload', message: `The payload ${fragment}.` },
        );
      }
      // Called at once, so a handler that answers without reading the store (a subscription) still acts in
      // this turn; only its acknowledgement waits.
      const answer = async () => (handlers[name] as (data: unknown) => object | Promise<object>)(parsed.data);
      answer().then(
        (data) => reply({ ok: true, ...data }),
        (error: unknown) => {
          if (error instanceof InspectError) return fail(error.error);
          if (error instanceof ClusterUnreachableError) {
            logger.warn({ err: error, event }, 'inspector event refused: the other nodes did not answer');
            return fail({ code: 'unavailable', message: 'The other servers cannot be reached right now; try again in a moment.' });
          }
          if (error instanceof StoreUnavailableError) {
            logger.warn({ err: error.cause, event }, 'inspector event refused: store unavailable');
            return fail({ code: 'store-unavailable', message: 'The call history cannot be read right now; try again in a moment.' });
          }
          logger.error({ err: error, event }, 'inspector event failed');
          fail({ code: 'internal', message: 'Something went wrong on our side.' });
        },
      );
    });

    socket.on('disconnect', () => {
      for (const unsubscribe of subscriptions.values()) unsubscribe();
      subscriptions.clear();
      cluster?.closed();
    });
  });

  return {
    closeSessions(sessionIds) {
      for (const socket of namespace.sockets.values()) {
        if (sessionIds.has(socket.data.session as string)) socket.disconnect(true);
      }
    },
  };
}

class InspectError extends Error {
  constructor(readonly error: ProtocolError) {
    super(error.message);
  }
}
