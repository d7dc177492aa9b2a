/** What the switchboard keeps for each live call request and each call in it. */
import type { Actor } from 'xstate';
import type { routingMachine } from '@callchart/machines';
import type { Journal } from './journal.ts';

export type RoutingActor = Actor<typeof routingMachine>;

export interface RequestEntry {
  requestId: string;
  visitorId: string;
  visitorName: string;
  pool: string;
  createdAt: number;
  /** The root of the request's actor tree; its callSession child runs the call. */
  actor: RoutingActor;
  /** Where the tree's steps and their effects write, and what they send waits for its commit. */
  journal: Journal;
}

/** A live call: who is in it, for access checks and views. Its state lives in the request's tree. */
export interface CallEntry {
  callId: string;
  requestId: string;
  agentId: string;
  agentName: string;
  visitorId: string;
  visitorName: string;
}

/**
 * A refusal the caller is told about. `unavailable`: in a cluster, the node that runs the request could not
 * be reached in time (it is being taken over, or Redis cannot be reached); nothing was done.
 */
export type SwitchboardErrorCode = 'forbidden' | 'not-found' | 'conflict' | 'rate-limited' | 'unavailable';

export const SWITCHBOARD_ERROR_CODES: readonly SwitchboardErrorCode[] = ['forbidden', 'not-found', 'conflict', 'rate-limited', 'unavailable'];

export class SwitchboardError extends Error {
  constructor(
    readonly code: SwitchboardErrorCode,
    message: string,
  ) {
    super(message);
  }
}
