/** Signaling through a real server's relay: what one leg of a call sends, the other must receive as sent. */
import type { ClientAck, ClientEventName, ClientPayload, ServerEventName } from '@callchart/machines';
import { expect } from 'vitest';
import type { TestClient } from './server.ts';

/** The events a leg sends that the server relays to the other leg under the same name. */
type RelayedEvent = ClientEventName & ServerEventName;

/** `from` sends `event`; `to` must receive exactly `payload`. Returns the server's reply to `from`, for the caller to check. */
export async function relay<E extends RelayedEvent>(from: TestClient, to: TestClient, event: E, payload: ClientPayload<E>): Promise<ClientAck<E>> {
  const ack = await from.emit(event, payload);
  expect(await to.next(event)).toEqual(payload);
  return ack;
}
