/**
 * What both people see about their call's connection while it runs: one notice at a time, and the
 * colour of the connection indicator. Shared by the widget's and the dashboard's views, so that the two
 * screens always tell the same story (DESIGN §5).
 */
import type { SnapshotFrom } from 'xstate';
import type { CallMessage, CallPlainKey } from './locales/index.ts';
import type { PeerConnectionMachine } from './peerConnection.machine.ts';

export type ConnectionIndicator = 'green' | 'amber' | 'red';

/** The words beside the indicator, for people who cannot see its colour. */
export const connectionIndicatorLabels: Record<ConnectionIndicator, CallPlainKey> = {
  green: 'call.connection.green',
  amber: 'call.connection.amber',
  red: 'call.connection.red',
};

/** A peerConnection child's snapshot, or whatever stands in for it (tests use inert doubles). */
export type CallMediaSnapshot = SnapshotFrom<PeerConnectionMachine>;

export interface CallPeer {
  /** The other person's socket is gone, as the server reports it. */
  away: boolean;
  /** The other person's name, when this screen knows it. */
  name: string | null;
  /** Who the other person is, for naming them without a name. */
  role: 'agent' | 'visitor';
}

/** The other person's socket is gone; the call waits for them. */
const waitingFor = ({ name, role }: CallPeer): CallMessage =>
  name !== null ? { key: 'call.waitingFor', params: { name } } : { key: role === 'agent' ? 'call.waitingForAgent' : 'call.waitingForVisitor' };

const reconnectingState = (media: CallMediaSnapshot): string | null => {
  const value: unknown = media.value;
  if (typeof value !== 'object' || value === null || !('reconnecting' in value)) return null;
  const sub = (value as { reconnecting: unknown }).reconnecting;
  return typeof sub === 'string' ? sub : typeof sub === 'object' && sub !== null ? Object.keys(sub)[0] ?? null : null;
};

/**
 * The one notice over the video, in order of precedence: this browser offline (the person can act on
 * it), then the other person gone (nothing to do but wait for them), then the path down with both
 * present. `unstable` often heals by itself within the grace period, so it shows nothing.
 */
export function callNotice(media: CallMediaSnapshot | undefined, peer: CallPeer): CallMessage | null {
  const running = media?.status === 'active' ? media : undefined;
  // This browser says it has no network: told at once, before any connection notices.
  if (running && !running.context.online) return { key: 'call.offline' };
  if (peer.away) return waitingFor(peer);
  if (!running) return null;
  const state = reconnectingState(running);
  if (state === null) return null;
  const { attempts, maxAttempts } = running.context;
  // An attempt in progress, or the media it brought back being proven, is that attempt; in the waits no
  // attempt is spent yet, so the person is told which one comes next.
  const attempt = state === 'attempting' || state === 'verifying' ? attempts : attempts + 1;
  // Both people's sockets are with the server and the media path is down: nobody is to blame.
  return { key: 'call.reconnecting', params: { attempt: Math.min(Math.max(attempt, 1), maxAttempts), maxAttempts } };
}

/** Green only while media is proven to flow and the other person is there; red when it cannot be. */
export function callIndicator(media: CallMediaSnapshot | undefined, peer: CallPeer): ConnectionIndicator {
  if (!media) return 'amber';
  if (media.status === 'done') return media.output?.outcome === 'failed' ? 'red' : 'amber';
  if (!media.context.online) return 'red';
  // Connected with nothing seen arriving yet, or a stall being looked into, is not good yet.
  return media.matches({ connected: 'flowing' }) && !peer.away ? 'green' : 'amber';
}
