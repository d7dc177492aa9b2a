/**
 * The visitor's panel. Every text, control and whether video shows come from `visitorView()` over the
 * call actor's snapshot and its media child's; the component keeps only what is its own (open or
 * minimised).
 */
import { useEffect, useId, useRef, useState, useSyncExternalStore } from 'react';
import { useSelector } from '@xstate/react';
import { connectionIndicatorLabels, visitorControlLabels, visitorView, type ConnectionIndicator, type VisitorControl } from '@callchart/machines';
import type { VisitorClient } from '@callchart/client';
import { useVisitorClient, type VisitorClientConfig } from './useVisitorClient.ts';
import { Video } from './Video.tsx';

export function Widget(config: VisitorClientConfig) {
  const boot = useVisitorClient(config);
  const [open, setOpen] = useState(true);
  const titleId = useId();
  const bodyId = useId();
  // A request made while the old session was being replaced goes to the new client once it is ready.
  const requestOnReady = useRef(false);

  useEffect(() => {
    if (boot.status === 'ready' && requestOnReady.current) {
      requestOnReady.current = false;
      boot.client.call.send({ type: 'call.request' });
    }
  }, [boot]);

  return (
    <section className="panel" data-open={open} aria-labelledby={titleId}>
      <header className="panel-header">
        {boot.status === 'ready' ? <LiveStatusDot client={boot.client} /> : <StatusDot connection={boot.status === 'failed' ? 'red' : 'amber'} />}
        <div className="panel-title">
          <h2 id={titleId}>Video support</h2>
          <p>Talk face to face with our team</p>
        </div>
        <button
          type="button"
          className="icon-button"
          aria-expanded={open}
          aria-controls={bodyId}
          aria-label={open ? 'Minimise video support' : 'Open video support'}
          onClick={() => setOpen((value) => !value)}
        >
          <span aria-hidden="true">{open ? '–' : '+'}</span>
        </button>
      </header>
      <div id={bodyId} className="panel-body" hidden={!open}>
        {boot.status === 'ready' ? (
          <CallPanel
            client={boot.client}
            onStale={() => {
              requestOnReady.current = true;
              boot.renew();
            }}
          />
        ) : boot.status === 'failed' ? (
          <>
            <div role="status" aria-live="polite" className="status">
              <p className="message">{boot.message}</p>
            </div>
            <div className="controls">
              <button type="button" className="button primary" onClick={boot.retry}>
                Retry
              </button>
            </div>
          </>
        ) : (
          <div role="status" aria-live="polite" className="status">
            <p className="message muted">Starting…</p>
          </div>
        )}
      </div>
    </section>
  );
}

function StatusDot({ connection }: { connection: ConnectionIndicator }) {
  const label = connectionIndicatorLabels[connection];
  return <span className="presence-dot" data-connection={connection} role="img" aria-label={label} title={label} />;
}

/** The call's connection while there is one, and the socket's otherwise: green only when both are good. */
function LiveStatusDot({ client }: { client: VisitorClient }) {
  const snapshot = useSelector(client.call, (s) => s);
  const media = useSelector(client.call, (s) => s.children.media);
  useSelector(media, (s) => s);
  const linkUp = useSelector(client.signaling, (s) => s.matches({ connected: 'ready' }));
  const { connection } = visitorView(snapshot);
  return <StatusDot connection={connection ?? (linkUp ? 'green' : 'amber')} />;
}

function CallPanel({ client, onStale }: { client: VisitorClient; onStale: () => void }) {
  const { call, signaling } = client;
  const snapshot = useSelector(call, (s) => s);
  const media = useSelector(call, (s) => s.children.media);
  // The overlay reads the media child's snapshot, which changes without the call's changing.
  useSelector(media, (s) => s);
  const unauthorized = useSelector(signaling, (s) => s.matches('unauthorized'));
  const localStream = useSyncExternalStore(client.subscribeStreams, () => client.localStream);
  const remoteStream = useSyncExternalStore(client.subscribeStreams, () => client.remoteStream);

  const view = visitorView(snapshot);
  const muted = snapshot.context.muted;
  const agentName = snapshot.context.agentName;

  const act = (control: VisitorControl) => {
    switch (control) {
      case 'call':
      case 'retry':
        if (unauthorized) return onStale();
        return call.send({ type: control === 'call' ? 'call.request' : 'retry' });
      case 'cancel':
        return call.send({ type: 'call.cancel' });
      case 'mute':
        return call.send({ type: 'mute.toggle' });
      case 'hangup':
        return call.send({ type: 'hangup' });
    }
  };

  return (
    <>
      {view.showVideo && (
        <div className="stage">
          <Video stream={remoteStream} role="remote" className="remote" label={agentName ? `Video of ${agentName}` : 'Video of your agent'} />
          <Video stream={localStream} role="local" className="local" label="Your camera" />
          {muted && (
            <span className="muted-tag" aria-hidden="true">
              Microphone off
            </span>
          )}
        </div>
      )}
      {/* One live region for both: the overlay is drawn over the video, the message below it. */}
      <div role="status" aria-live="polite" className="status">
        {view.overlay && (
          <span className="overlay" data-role="overlay">
            <span className="spinner" aria-hidden="true" />
            {view.overlay}
          </span>
        )}
        {view.message && <p className="message">{view.message}</p>}
      </div>
      {!view.showVideo && view.message === null && view.controls.includes('call') && (
        <p className="intro">Connect with a support agent by video. Your camera and microphone are used only during the call.</p>
      )}
      <div className="controls">
        {view.controls.map((control) => (
          <button
            key={control}
            type="button"
            className={`button ${buttonTone[control]}`}
            aria-pressed={control === 'mute' ? muted : undefined}
            onClick={() => act(control)}
          >
            {visitorControlLabels[control]}
          </button>
        ))}
      </div>
    </>
  );
}

const buttonTone: Record<VisitorControl, string> = {
  call: 'primary',
  retry: 'primary',
  cancel: 'secondary',
  mute: 'secondary',
  hangup: 'danger',
};
