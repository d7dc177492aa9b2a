/**
 * What the server's callSession needs to know about this side's media (DESIGN §2): `call.media` when
 * the connection is up, restarting or gone, and `call.telemetry` for each restart attempt's outcome.
 * Everything here is read off the peerConnection child's emitted events; the child decides, this
 * only reports.
 */
import type { ActorRefFrom } from 'xstate';
import type { ClientMessage, PeerConnectionMachine } from '@callchart/machines';
import { all, type Unsubscribe } from './on.ts';

export type MediaReport = ClientMessage<'call.media' | 'call.telemetry'>;

export interface MediaReporter {
  /**
   * Reports where the media stands now. A server that lost this side's socket forgets its media state
   * and keeps the call paused until the client reports again, so this runs after every resume.
   */
  reportState(): void;
  stop: Unsubscribe;
}

/** Reports the child's media state for `callId` from the moment it is bound. */
export function reportMedia(
  media: ActorRefFrom<PeerConnectionMachine>,
  callId: string,
  report: (message: MediaReport) => void,
  now: () => number = Date.now,
): MediaReporter {
  const reportState = () => {
    const snapshot = media.getSnapshot();
    if (snapshot.status !== 'active') return;
    if (snapshot.matches('reconnecting')) {
      const attempt = snapshot.matches({ reconnecting: 'attempting' }) ? snapshot.context.attempts : 0;
      report({ event: 'call.media', payload: attempt > 0 ? { callId, state: 'reconnecting', attempt } : { callId, state: 'reconnecting' } });
    } else {
      // `unstable` is not a loss yet: the child spends no attempt on it, and often heals within its grace.
      report({ event: 'call.media', payload: { callId, state: 'connected' } });
    }
  };
  // The child only exists once the first connection is up: it is started by the `ice.connected` that
  // ends `connecting`.
  reportState();
  const attemptStartedAt = new Map<number, number>();
  const subscriptions = [
    media.on('attempt.started', ({ attempt }) => {
      attemptStartedAt.set(attempt, now());
      report({ event: 'call.media', payload: { callId, state: 'reconnecting', attempt } });
    }),
    media.on('attempt.failed', ({ attempt }) => {
      const at = now();
      const startedAt = attemptStartedAt.get(attempt) ?? at;
      report({ event: 'call.telemetry', payload: { callId, attempt, at: startedAt, durationMs: at - startedAt, outcome: 'failed' } });
    }),
    media.on('recovered', ({ attempts, durationMs }) => {
      report({ event: 'call.media', payload: { callId, state: 'connected' } });
      // Zero attempts: the connection came back while waiting for signaling, before any restart, so
      // there is no reconnection attempt to record.
      if (attempts > 0) {
        const at = now();
        report({ event: 'call.telemetry', payload: { callId, attempt: attempts, at: at - durationMs, durationMs, outcome: 'recovered' } });
      }
    }),
  ].map((subscription) => () => subscription.unsubscribe());
  // `failed` is not reported here: the call machine's `reportCallFailure` does it as the call ends.
  return { reportState, stop: all(subscriptions) };
}
