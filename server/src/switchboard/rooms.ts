/**
 * Socket.IO rooms: one per person, so every socket of theirs hears what is meant for them, and one per
 * call, so both legs hear what is meant for the call.
 */
import type { Server } from 'socket.io';
import type { ClientToServerEvents, ServerEventName, ServerPayload, ServerToClientEvents } from '@callchart/machines';
import type { Courier, OutboxMessage } from './journal.ts';

export type SwitchboardIo = Server<ClientToServerEvents, ServerToClientEvents>;

/**
 * How long asking every node about a room may take. The adapter waits for every node it counts, and a node
 * cut off from Redis while Redis still counts its subscription never answers: past this, nobody can say.
 */
export const ROOM_LOOKUP_TIMEOUT_MS = 1_000;

export const agentRoom = (agentId: string) => `agent:${agentId}`;
export const visitorRoom = (visitorId: string) => `visitor:${visitorId}`;
export const callRoom = (callId: string) => `call:${callId}`;

export type Person = { kind: 'agent' | 'visitor'; id: string };

export const personRoom = (person: Person) => (person.kind === 'agent' ? agentRoom(person.id) : visitorRoom(person.id));

export class Rooms implements Courier {
  constructor(private readonly io: SwitchboardIo) {}

  /** Sends what a committed step sends. */
  deliver(message: OutboxMessage): void {
    if (message.kind === 'emit') (this.io.to(message.room).emit as (event: string, payload: unknown) => boolean)(message.event, message.payload);
    else if (message.kind === 'joinCall') this.joinCall(message.callId, message.agentId, message.visitorId);
    else this.leaveCall(message.callId);
  }

  /**
   * Sends a message of no step's: a ring sent again to a socket that opened later, whose agent its request
   * already holds (a step's ring is claimed through its journal, `Journal.emit`'s `claim`).
   */
  emit<E extends ServerEventName>(room: string, event: E, payload: ServerPayload<E>): void {
    (this.io.to(room).emit as (event: string, payload: unknown) => boolean)(event, payload);
  }

  /**
   * Whether any socket, on any node, is in the room: true or false, or null when a node did not say in time.
   * Through the adapter, so in a cluster every node is asked.
   */
  async occupied(room: string): Promise<boolean | null> {
    try {
      return (await this.io.in(room).timeout(ROOM_LOOKUP_TIMEOUT_MS).fetchSockets()).length > 0;
    } catch {
      return null;
    }
  }

  /** Every socket both people have now joins the call's room. */
  joinCall(callId: string, agentId: string, visitorId: string): void {
    this.io.in(agentRoom(agentId)).socketsJoin(callRoom(callId));
    this.io.in(visitorRoom(visitorId)).socketsJoin(callRoom(callId));
  }

  leaveCall(callId: string): void {
    this.io.in(callRoom(callId)).socketsLeave(callRoom(callId));
  }
}
