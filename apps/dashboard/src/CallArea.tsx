import { useEffect, useState, useSyncExternalStore } from 'react';
import { connectionIndicatorLabels, ringSecondsLeft, type AgentControl, type AgentView } from '@callchart/machines';
import type { AgentClient } from '@callchart/client';
import type { SnapshotFrom } from 'xstate';
import { Video } from './Video.tsx';

type AgentSnapshot = SnapshotFrom<AgentClient['call']>;

const controlLabels: Partial<Record<AgentControl, string>> = {
  accept: 'Accept',
  reject: 'Reject',
  hangup: 'Hang up',
  dismiss: 'Dismiss',
};

const controlEvents = {
  accept: { type: 'accept' },
  reject: { type: 'reject' },
  hangup: { type: 'hangup' },
  dismiss: { type: 'dismiss' },
} as const;

const buttonTone: Partial<Record<AgentControl, string>> = {
  accept: 'success',
  reject: 'secondary',
  hangup: 'danger',
  dismiss: 'secondary',
};

export function CallArea({ client, view, snapshot }: { client: AgentClient; view: AgentView; snapshot: AgentSnapshot }) {
  const localStream = useSyncExternalStore(client.subscribeStreams, () => client.localStream);
  const remoteStream = useSyncExternalStore(client.subscribeStreams, () => client.remoteStream);
  const visitorName = snapshot.context.visitorName;
  const callControls = view.controls.filter((control) => control in controlEvents) as (keyof typeof controlEvents)[];
  const idle = view.presence === 'available' || view.presence === 'away' || view.presence === 'offline';
  const ringingVisitor = view.ringing?.visitorName ?? null;
  useEffect(() => {
    // An agent working in another tab sees the ring in the tab strip.
    if (ringingVisitor === null) return;
    const title = document.title;
    document.title = `Incoming call from ${ringingVisitor} · ${title}`;
    return () => {
      document.title = title;
    };
  }, [ringingVisitor]);
  const indicatorLabel =
    view.connection === 'amber' && snapshot.matches('connecting') ? 'Connecting' : view.connection ? connectionIndicatorLabels[view.connection] : null;

  return (
    <section className="card call-card" aria-labelledby="call-heading" data-presence={view.presence}>
      <div className="card-head">
        <div>
          <h2 id="call-heading">Current call</h2>
          {view.showVideo && visitorName && <p className="subtle">with {visitorName}</p>}
        </div>
        {view.connection && indicatorLabel && (
          <p className="indicator" data-connection={view.connection}>
            <span className="dot" aria-hidden="true" />
            {indicatorLabel}
          </p>
        )}
      </div>

      <div className="media-area">
      {view.showVideo && (
        <div className="stage">
          <Video stream={remoteStream} role="remote" className="remote" label={visitorName ? `Video of ${visitorName}` : 'Video of the visitor'} />
          <Video stream={localStream} role="local" className="local" label="Your camera" />
        </div>
      )}

      {/* One live region: the ring, the overlay drawn over the video, and the message below it. */}
      <div role="status" aria-live="polite" className="status">
        {view.ringing && (
          <p className="ring-title">
            Incoming call from <strong>{view.ringing.visitorName}</strong>
          </p>
        )}
        {view.overlay && (
          <span className="overlay" data-role="overlay">
            <span className="spinner" aria-hidden="true" />
            {view.overlay}
          </span>
        )}
        {view.message && <p className="message">{view.message}</p>}
      </div>
      </div>

      {view.ringing && <RingCountdown expiresAt={view.ringing.expiresAt} />}

      {idle && (
        <div className="idle">
          <p className="idle-title">{view.presence === 'away' ? 'You are away' : 'Waiting for calls'}</p>
          <p className="subtle">
            {view.presence === 'away'
              ? 'No calls will ring until you set yourself to Available.'
              : 'Incoming calls ring here. Keep this tab open.'}
          </p>
        </div>
      )}

      {callControls.length > 0 && (
        <div className="controls">
          {callControls.map((control) => (
            <button key={control} type="button" className={`button ${buttonTone[control] ?? 'secondary'}`} onClick={() => client.call.send(controlEvents[control])}>
              {controlLabels[control]}
            </button>
          ))}
        </div>
      )}
    </section>
  );
}

const RING_TICK_MS = 250;

function RingCountdown({ expiresAt }: { expiresAt: number }) {
  const [now, setNow] = useState(() => Date.now());
  const [total] = useState(() => Math.max(1, expiresAt - Date.now()));
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), RING_TICK_MS);
    return () => clearInterval(timer);
  }, [expiresAt]);
  const seconds = ringSecondsLeft(expiresAt, now);
  const fraction = Math.min(1, Math.max(0, (expiresAt - now) / total));
  return (
    <div className="countdown">
      {/* A timer is not announced on every tick; the ring itself was, through the status region. */}
      <p role="timer" aria-atomic="true">
        Rings out in <strong>{seconds} s</strong>
      </p>
      <div className="countdown-bar" aria-hidden="true">
        <span style={{ width: `${fraction * 100}%` }} />
      </div>
    </div>
  );
}
