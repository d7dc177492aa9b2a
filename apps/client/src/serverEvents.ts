/**
 * Every payload the server sends is validated with the protocol's schemas before anything acts on it
 * (DESIGN §3); an invalid one is reported and dropped, so no machine ever sees a malformed event.
 *
 * A message from a server machine's effect carries an id (`eid`). A server node that takes a request over
 * from one that died sends that request's last messages again, so a second message with an id already
 * handled is the same message, and is dropped.
 */
import type { Socket } from 'socket.io-client';
import { parseServerEvent, type ServerEventName, type ServerPayload } from '@callchart/machines';
import { ClientError, type ErrorListener } from './errors.ts';
import type { Unsubscribe } from './on.ts';

export type ServerEventHandlers = { [E in ServerEventName]?: (payload: ServerPayload<E>) => void };

/** More than a takeover can send again: one step's messages, for every request a client takes part in. */
const REMEMBERED_IDS = 512;

/** The ids handled most recently, oldest forgotten first. */
class RecentIds {
  private readonly ids = new Set<string>();
  /** Whether `id` was new; remembers it. */
  add(id: string): boolean {
    if (this.ids.has(id)) return false;
    this.ids.add(id);
    if (this.ids.size > REMEMBERED_IDS) this.ids.delete(this.ids.values().next().value as string);
    return true;
  }
}

/** Calls the handler of each server event named in `handlers`, with its validated payload. */
export function onServerEvents(socket: Socket, handlers: ServerEventHandlers, onError: ErrorListener): Unsubscribe {
  // Per subscription, and it outlives reconnections: the same Socket object reconnects.
  const handled = new RecentIds();
  const listener = (event: string, payload: unknown) => {
    if (!Object.hasOwn(handlers, event)) return;
    const parsed = parseServerEvent(event, payload);
    if (!parsed.ok) {
      onError(
        new ClientError('invalid-server-event', 'The server sent a message this client cannot read.', {
          event,
          protocolError: parsed.error,
        }),
      );
      return;
    }
    const eid = (parsed.data as { eid?: string }).eid;
    if (eid !== undefined && !handled.add(eid)) return;
    (handlers[parsed.event] as (data: unknown) => void)(parsed.data);
  };
  socket.onAny(listener);
  return () => {
    socket.offAny(listener);
  };
}
