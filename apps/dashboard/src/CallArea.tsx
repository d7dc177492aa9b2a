import { useEffect, useRef, useState } from 'react';
import { connectionIndicatorLabels, ringSecondsLeft, type AgentControl, type AgentView } from '@callchart/machines';
import type { AgentPlainKey, Segment } from '@callchart/machines/locales';
import type { AgentClient } from '@callchart/client';
import { CallOverlay, CallStage } from '@callchart/ui';
import type { SnapshotFrom } from 'xstate';
import { primaryControl, useFocusFollows } from './focusFollows.ts';
import { useLocale } from './locale.ts';

type AgentSnapshot = SnapshotFrom<AgentClient['call']>;

const controlLabels: Partial<Record<AgentControl, AgentPlainKey>> = {
  accept: 'agent.control.accept',
  reject: 'agent.control.reject',
  hangup: 'agent.control.hangup',
  dismiss: 'agent.control.dismiss',
};

/** A message with the values put into it in bold. */
const withValuesStrong = (pieces: Segment[]) => pieces.map((piece, index) => (piece.param ? <strong key={index}>{piece.text}</strong> : piece.text));

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
  const locale = useLocale();
  const visitorName = snapshot.context.visitorName;
  const callControls = view.controls.filter((control) => control in controlEvents) as (keyof typeof controlEvents)[];
  const idle = view.presence === 'available' || view.presence === 'away' || view.presence === 'offline';
  const ringingVisitor = view.ringing?.visitorName ?? null;
  const primary = primaryControl(view);
  const primaryButton = useRef<HTMLButtonElement>(null);
  useFocusFollows(primary !== null && primary in controlEvents ? primary : null, primaryButton);
  useEffect(() => {
    // An agent working in another tab sees the ring in the tab strip.
    if (ringingVisitor === null) return;
    const title = document.title;
    document.title = locale.t('agent.ring.tabTitle', { name: ringingVisitor, title });
    return () => {
      document.title = title;
    };
  }, [ringingVisitor, locale]);
  const indicatorLabel =
    view.connection === 'amber' && snapshot.matches('connecting')
      ? locale.t('agent.call.connecting')
      : view.connection
        ? locale.t(connectionIndicatorLabels[view.connection])
        : null;

  return (
    <section className="card call-card" aria-labelledby="call-heading" data-presence={view.presence}>
      <div className="card-head">
        <div>
          <h2 id="call-heading">{locale.t('agent.call.heading')}</h2>
          {view.showVideo && visitorName && <p className="subtle">{locale.t('agent.call.with', { name: visitorName })}</p>}
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
        <CallStage
          streams={client}
          remoteLabel={visitorName ? locale.t('call.videoOf', { name: visitorName }) : locale.t('agent.call.videoOfVisitor')}
          ownCameraLabel={locale.t('call.ownCamera')}
        />
      )}

      {/* One live region: the ring, the overlay drawn over the video, and the message below it. */}
      <div role="status" aria-live="polite" className="status">
        {view.ringing && (
          <p className="ring-title">{withValuesStrong(locale.segments('agent.ring.title', { name: view.ringing.visitorName }))}</p>
        )}
        {view.overlay && <CallOverlay text={locale.text(view.overlay)} />}
        {view.message && <p className="message">{locale.text(view.message)}</p>}
      </div>
      </div>

      {view.ringing && <RingCountdown expiresAt={view.ringing.expiresAt} />}

      {idle && (
        <div className="idle">
          <p className="idle-title">{locale.t(view.presence === 'away' ? 'agent.idle.away' : 'agent.idle.available')}</p>
          <p className="subtle">{locale.t(view.presence === 'away' ? 'agent.idle.awayHint' : 'agent.idle.availableHint')}</p>
        </div>
      )}

      {callControls.length > 0 && (
        <div className="controls">
          {callControls.map((control) => (
            <button key={control} ref={control === primary ? primaryButton : undefined} type="button" className={`button ${buttonTone[control] ?? 'secondary'}`} onClick={() => client.call.send(controlEvents[control])}>
              {controlLabels[control] && locale.t(controlLabels[control])}
            </button>
          ))}
        </div>
      )}
    </section>
  );
}

const RING_TICK_MS = 250;

function RingCountdown({ expiresAt }: { expiresAt: number }) {
  const locale = useLocale();
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
        {withValuesStrong(locale.segments('agent.ring.countdown', { count: seconds }))}
      </p>
      <div className="countdown-bar" aria-hidden="true">
        <span style={{ width: `${fraction * 100}%` }} />
      </div>
    </div>
  );
}
