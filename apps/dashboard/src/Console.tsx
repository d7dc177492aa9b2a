/**
 * The logged-in dashboard: presence, the current call (ring, video, failure) and call history. Every
 * call-related text and control comes from `agentView()` over the agent actor and its media child.
 */
import { useEffect, useRef, useState } from 'react';
import { useSelector } from '@xstate/react';
import { agentView, type AgentView } from '@callchart/machines';
import type { AgentPlainKey } from '@callchart/machines/locales';
import type { AgentClient } from '@callchart/client';
import { CallArea } from './CallArea.tsx';
import { primaryControl, useFocusFollows } from './focusFollows.ts';
import { History } from './History.tsx';
import { useLocale } from './locale.ts';
import { outboxDrained, useAgentClient } from './useAgentClient.ts';
import type { AgentSession } from '@callchart/ui';

const SESSION_EXPIRED = 'agent.sessionExpired';

export function Console({ session, onLoggedOut }: { session: AgentSession; onLoggedOut: (reason?: AgentPlainKey) => void }) {
  const client = useAgentClient(session.token);
  const locale = useLocale();
  return (
    <div className="app">
      {client ? (
        <Connected client={client} session={session} onLoggedOut={onLoggedOut} />
      ) : (
        <p className="subtle page-pad" role="status">
          {locale.t('call.starting')}
        </p>
      )}
    </div>
  );
}

function Connected({ client, session, onLoggedOut }: { client: AgentClient; session: AgentSession; onLoggedOut: (reason?: AgentPlainKey) => void }) {
  const locale = useLocale();
  const snapshot = useSelector(client.call, (s) => s);
  const media = useSelector(client.call, (s) => s.children.media);
  // The indicator and the overlay read the media child's snapshot, which changes without the agent's.
  useSelector(media, (s) => s);
  const unauthorized = useSelector(client.signaling, (s) => s.matches('unauthorized'));
  const signalingReady = useSelector(client.signaling, (s) => s.matches({ connected: 'ready' }));
  const [loggingOut, setLoggingOut] = useState(false);

  const view = agentView(snapshot);

  useEffect(() => {
    // The server refused the token on a reconnect (it expired); the machine never retries that.
    if (unauthorized) onLoggedOut(SESSION_EXPIRED);
  }, [unauthorized, onLoggedOut]);

  const logOut = async () => {
    setLoggingOut(true);
    client.call.send({ type: 'logout' });
    await outboxDrained(client);
    onLoggedOut();
  };

  return (
    <>
      <header className="topbar">
        {/* The page's heading: the product's name, which every screen of the console sits under. */}
        <h1 className="brand">
          <span className="brand-mark" aria-hidden="true" />
          <span>{locale.t('agent.brand')}</span>
          <span className="brand-sub">{locale.t('agent.product')}</span>
        </h1>
        <div className="topbar-right">
          <span className="agent-name">
            {session.agent.name}
            <span className={`link-state ${signalingReady ? 'up' : 'down'}`}>{locale.t(signalingReady ? 'agent.online' : 'agent.connectingToServer')}</span>
          </span>
          <Presence view={view} client={client} />
          <button type="button" className="button ghost" onClick={() => void logOut()} disabled={loggingOut}>
            {locale.t('agent.logOut')}
          </button>
        </div>
      </header>
      <main className="content">
        <CallArea client={client} view={view} snapshot={snapshot} />
        <History token={session.token} client={client} onUnauthorized={() => onLoggedOut(SESSION_EXPIRED)} />
      </main>
    </>
  );
}

function Presence({ view, client }: { view: AgentView; client: AgentClient }) {
  const locale = useLocale();
  const options = [
    { control: 'available', label: 'agent.presence.available', event: { type: 'presence.available' } },
    { control: 'away', label: 'agent.presence.away', event: { type: 'presence.away' } },
  ] as const;
  const available = useRef<HTMLButtonElement>(null);
  // Keyed on the presence too: going away moves focus to the way back.
  useFocusFollows(primaryControl(view) === 'available' ? view.presence : null, available);
  return (
    <div className="presence" role="group" aria-label={locale.t('agent.presence')}>
      {options.map(({ control, label, event }) => {
        const current = view.presence === control;
        return (
          <button
            key={control}
            ref={control === 'available' ? available : undefined}
            type="button"
            className={`presence-option ${control}`}
            aria-pressed={current}
            // Only the change the machine offers: no presence change while ringing or in a call.
            disabled={!current && !view.controls.includes(control)}
            onClick={() => {
              if (!current) client.call.send(event);
            }}
          >
            <span className="dot" aria-hidden="true" />
            {locale.t(label)}
          </button>
        );
      })}
      {view.presence === 'busy' && <span className="busy-tag">{locale.t('agent.presence.busy')}</span>}
    </div>
  );
}
