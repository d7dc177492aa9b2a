/**
 * What a screen can say about the signaling socket, read from the signaling machine's snapshot alone:
 * one word per situation a person would tell apart, so a custom UI needs no knowledge of the substates.
 */
import type { SnapshotFrom } from 'xstate';
import type { SignalingMachine } from './signaling.machine.ts';

export type SignalingStatus =
  /** The first connection of the session is being opened. */
  | 'connecting'
  /** The session is up: messages go out. */
  | 'ready'
  /** The connection was lost (or its path died) and the machine is getting it back. */
  | 'reconnecting'
  /** The device has no network; nothing is tried until it is back. */
  | 'offline'
  /** Closed on purpose, by the server or the client, or given up after the last attempt. */
  | 'disconnected'
  /** The server refused the credentials; a new token is the only way back. */
  | 'unauthorized';

export function signalingStatus(snapshot: SnapshotFrom<SignalingMachine>): SignalingStatus {
  if (snapshot.matches({ connected: 'ready' })) return 'ready';
  if (snapshot.matches('unauthorized')) return 'unauthorized';
  if (snapshot.matches('disconnected')) return 'disconnected';
  if (snapshot.matches({ reconnecting: 'offline' })) return 'offline';
  if (snapshot.matches('idle') || snapshot.matches('connecting')) return 'connecting';
  // Resuming the session on a new socket, abandoning a dead one, or waiting out the backoff: all are
  // the way back to a session that was up.
  return 'reconnecting';
}
