/**
 * The visitor's panel. Every text, control and whether video shows come from `visitorView()` over the
 * call actor's snapshot and its media child's; the component keeps only what is its own (open or
 * minimised, and whether the visitor is using it, which decides if focus may follow the state).
 */
import { useEffect, useId, useMemo, useRef, useState, type KeyboardEvent, type RefObject } from 'react';
import { useSelector } from '@xstate/react';
import { connectionIndicatorLabels, visitorControlLabels, visitorView, type ConnectionIndicator, type VisitorControl } from '@callchart/machines';
import { visitorTranslator, type VisitorTranslator } from '@callchart/machines/locales';
import type { VisitorClient } from '@callchart/client';
import { primaryControl, useAttention, useFocusFollows } from './focusFollows.ts';
import { useVisitorClient, type VisitorClientConfig } from './useVisitorClient.ts';
import { CallOverlay, CallStage } from '@callchart/ui';

export interface WidgetProps extends VisitorClientConfig {
  /** The visitor's locale, a BCP 47 tag such as `de-AT`: its language is the one every text is shown in. */
  lang: string;
}

export function Widget({ lang, ...config }: WidgetProps) {
  const boot = useVisitorClient(config);
  const locale = useMemo(() => visitorTranslator(lang), [lang]);
  const [open, setOpen] = useState(true);
  const titleId = useId();
  const bodyId = useId();
  // A request made while the old session was being replaced goes to the new client once it is ready.
  const requestOnReady = useRef(false);
  const panel = useRef<HTMLElement>(null);
  const toggle = useRef<HTMLButtonElement>(null);
  const retry = useRef<HTMLButtonElement>(null);
  const attention = useAttention(panel);
  useFocusFollows(boot.status === 'failed' ? 'retry' : null, retry, attention);

  const minimiseOnEscape = (event: KeyboardEvent<HTMLElement>) => {
    if (event.key !== 'Escape' || !open) return;
    setOpen(false);
    // The focused control is about to be hidden; the toggle is what brings it back.
    toggle.current?.focus();
  };

  useEffect(() => {
    if (boot.status === 'ready' && requestOnReady.current) {
      requestOnReady.current = false;
      boot.client.call.send({ type: 'call.request' });
    }
  }, [boot]);

  return (
    <section ref={panel} className="panel" lang={locale.lang} data-open={open} aria-labelledby={titleId} onKeyDown={minimiseOnEscape}>
      <header className="panel-header">
        {boot.status === 'ready' ? (
          <LiveStatusDot client={boot.client} locale={locale} />
        ) : (
          <StatusDot connection={boot.status === 'failed' ? 'red' : 'amber'} locale={locale} />
        )}
        <div className="panel-title">
          <h2 id={titleId}>{locale.t('visitor.title')}</h2>
          <p>{locale.t('visitor.subtitle')}</p>
        </div>
        <button
          ref={toggle}
          type="button"
          className="icon-button"
          aria-expanded={open}
          aria-controls={bodyId}
          aria-label={locale.t(open ? 'visitor.minimise' : 'visitor.open')}
          onClick={() => setOpen((value) => !value)}
        >
          <span aria-hidden="true">{open ? '–' : '+'}</span>
        </button>
      </header>
      <div id={bodyId} className="panel-body" hidden={!open}>
        {boot.status === 'ready' ? (
          <CallPanel
            client={boot.client}
            locale={locale}
            attention={attention}
            onStale={() => {
              requestOnReady.current = true;
              boot.renew();
            }}
          />
        ) : boot.status === 'failed' ? (
          // The same region as Starting… below, so a failure after a retry is announced as a change.
          <>
            <div role="status" aria-live="polite" className="status">
              <p className="message">{locale.t(boot.message)}</p>
            </div>
            <div className="controls">
              <button ref={retry} type="button" className="button primary" onClick={boot.retry}>
                {locale.t('visitor.control.retry')}
              </button>
            </div>
          </>
        ) : (
          <>
            <div role="status" aria-live="polite" className="status">
              <p className="message muted">{locale.t('call.starting')}</p>
            </div>
          </>
        )}
      </div>
    </section>
  );
}

function StatusDot({ connection, locale }: { connection: ConnectionIndicator; locale: VisitorTranslator }) {
  const label = locale.t(connectionIndicatorLabels[connection]);
  return <span className="presence-dot" data-connection={connection} role="img" aria-label={label} title={label} />;
}

/** The call's connection while there is one, and the socket's otherwise: green only when both are good. */
function LiveStatusDot({ client, locale }: { client: VisitorClient; locale: VisitorTranslator }) {
  const snapshot = useSelector(client.call, (s) => s);
  const media = useSelector(client.call, (s) => s.children.media);
  useSelector(media, (s) => s);
  const linkUp = useSelector(client.signaling, (s) => s.matches({ connected: 'ready' }));
  const { connection } = visitorView(snapshot);
  return <StatusDot connection={connection ?? (linkUp ? 'green' : 'amber')} locale={locale} />;
}

function CallPanel({
  client,
  locale,
  attention,
  onStale,
}: {
  client: VisitorClient;
  locale: VisitorTranslator;
  attention: RefObject<boolean>;
  onStale: () => void;
}) {
  const { call, signaling } = client;
  const snapshot = useSelector(call, (s) => s);
  const media = useSelector(call, (s) => s.children.media);
  // The overlay reads the media child's snapshot, which changes without the call's changing.
  useSelector(media, (s) => s);
  const unauthorized = useSelector(signaling, (s) => s.matches('unauthorized'));

  const view = visitorView(snapshot);
  const muted = snapshot.context.muted;
  const agentName = snapshot.context.agentName;
  const primary = primaryControl(view.controls);
  const primaryButton = useRef<HTMLButtonElement>(null);
  useFocusFollows(primary, primaryButton, attention);

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
        <CallStage
          streams={client}
          remoteLabel={agentName ? locale.t('call.videoOf', { name: agentName }) : locale.t('visitor.videoOfAgent')}
          ownCameraLabel={locale.t('call.ownCamera')}
        >
          {muted && (
            <span className="muted-tag" aria-hidden="true">
              {locale.t('visitor.microphoneOff')}
            </span>
          )}
        </CallStage>
      )}
      {/* One live region for both: the overlay is drawn over the video, the message below it. */}
      <div role="status" aria-live="polite" className="status">
        {view.overlay && <CallOverlay text={locale.text(view.overlay)} />}
        {view.message && <p className="message">{locale.text(view.message)}</p>}
      </div>
      {!view.showVideo && view.message === null && view.controls.includes('call') && (
        <p className="intro">{locale.t('visitor.intro')}</p>
      )}
      <div className="controls">
        {view.controls.map((control) => (
          <button
            key={control}
            ref={control === primary ? primaryButton : undefined}
            type="button"
            className={`button ${buttonTone[control]}`}
            aria-pressed={control === 'mute' ? muted : undefined}
            onClick={() => act(control)}
          >
            {locale.t(visitorControlLabels[control])}
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
