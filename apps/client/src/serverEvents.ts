/**
 * Every payload the server sends is validated with the protocol's schemas before anything acts on it
 * (DESIGN §3); an invalid one is reported and dropped, so no machine ever sees a malformed event.
 */
import type { Socket } from 'socket.io-client';
import { parseServerEvent, type ServerEventName, type ServerPayload } from '@callchart/machines';
import { ClientError, type ErrorListener } from './errors.ts';
import type { Unsubscribe } from './on.ts';

export type ServerEventHandlers = { [E in ServerEventName]?: (payload: ServerPayload<E>) => void };

/** Calls the handler of each server event named in `handlers`, with its validated payload. */
export function onServerEvents(socket: Socket, handlers: ServerEventHandlers, onError: ErrorListener): Unsubscribe {
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
    (handlers[parsed.event] as (data: unknown) => void)(parsed.data);
  };
  socket.onAny(listener);
  return () => {
    socket.offAny(listener);
  };
}
