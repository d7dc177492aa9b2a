import { useCallback, useEffect, useRef, useState } from 'react';
import type { AgentSession } from '@callchart/ui';
import { missingRoleMessage } from './account.ts';
import { CallHistoryView } from './CallHistoryView.tsx';
import { ConnectionStatus } from './ConnectionStatus.tsx';
import { FinishedList } from './FinishedList.tsx';
import { LiveList } from './LiveList.tsx';
import { LiveRequestView } from './LiveRequestView.tsx';
import { NodeList } from './NodeList.tsx';
import { useFeed } from './useFeed.ts';
import type { CallRecord, LiveRequest } from '@callchart/machines';

type Selection = { kind: 'live'; request: LiveRequest } | { kind: 'call'; callId: string; title: string; record: CallRecord | null };

// The server writes a call's end as the request finishes; a moment later the finished list has it.
const FINISHED_SETTLE_MS = 1_000;

export function Inspector({ session, onLoggedOut }: { session: AgentSession; onLoggedOut: (reason?: string) => void }) {
  const { feed, status, requests, clientInspection, nodes } = useFeed(session.token);
  const [selection, setSelection] = useState<Selection | null>(null);
  const [finishedKey, setFinishedKey] = useState(0);
  const connected = status.kind === 'connected';

  const expired = useCallback(() => onLoggedOut('Your session has expired. Please log in again.'), [onLoggedOut]);

  useEffect(() => {
    if (status.kind !== 'refused') return;
    if (status.reason === 'forbidden') onLoggedOut(missingRoleMessage(session.agent.name));
    else expired();
  }, [status, session.agent.name, onLoggedOut, expired]);

  // A request leaving the live list has just finished, so its call belongs in the finished list now. The
  // timer outlives later lists: they arrive within 100 ms of any transition and must not keep it from firing.
  const previousIds = useRef<Set<string>>(new Set());
  const finishedTimer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(finishedTimer.current), []);
  useEffect(() => {
    if (requests === null) return;
    const ids = new Set(requests.map((request) => request.requestId));
    const left = [...previousIds.current].some((id) => !ids.has(id));
    previousIds.current = ids;
    if (!left) return;
    clearTimeout(finishedTimer.current);
    finishedTimer.current = setTimeout(() => setFinishedKey((key) => key + 1), FINISHED_SETTLE_MS);
  }, [requests]);

  const liveNow = selection?.kind === 'live' ? requests?.find((request) => request.requestId === selection.request.requestId) : undefined;
  // The selection keeps the request as last listed, so it still reads right once the request has ended.
  useEffect(() => {
    if (liveNow) setSelection((selection) => (selection?.kind === 'live' && selection.request !== liveNow ? { kind: 'live', request: liveNow } : selection));
  }, [liveNow]);

  return (
    <div className="inspector">
      <header className="topbar">
        <p className="brand">
          callchart <span className="brand-sub">Inspector</span>
        </p>
        <ConnectionStatus status={status} />
        <div className="who">
          <span>{session.agent.name}</span>
          <button type="button" className="button small" onClick={() => onLoggedOut()}>
            Log out
          </button>
        </div>
      </header>
      <nav className="sidebar" aria-label="Requests and calls">
        {nodes !== null && <NodeList nodes={nodes} />}
        <LiveList
          requests={requests}
          selectedId={selection?.kind === 'live' ? selection.request.requestId : null}
          onSelect={(requestId) => {
            const request = requests?.find((candidate) => candidate.requestId === requestId);
            if (request) setSelection({ kind: 'live', request });
          }}
        />
        <FinishedList
          token={session.token}
          selectedId={selection?.kind === 'call' ? selection.callId : null}
          refreshKey={finishedKey}
          onSelect={(record) => setSelection({ kind: 'call', callId: record.id, title: `${record.visitorName} with ${record.agentName}`, record })}
          onUnauthorized={expired}
        />
      </nav>
      <main className="content">
        {feed === null || selection === null ? (
          <div className="empty">
            <h1>Pick a request or a call</h1>
            <p className="subtle">
              A live request shows its machines as they move, on the server and, when the server lets clients report, in the agent’s and the
              visitor’s browsers. A finished call replays the transitions the server stored.
            </p>
          </div>
        ) : selection.kind === 'live' ? (
          <LiveRequestView
            key={selection.request.requestId}
            feed={feed}
            request={selection.request}
            ended={requests !== null && liveNow === undefined}
            clientInspection={clientInspection}
            connected={connected}
            onOpenCall={(callId) => {
              const { visitorName, agentName } = selection.request;
              setSelection({ kind: 'call', callId, title: agentName ? `${visitorName} with ${agentName}` : visitorName, record: null });
            }}
          />
        ) : (
          <CallHistoryView
            key={selection.callId}
            feed={feed}
            callId={selection.callId}
            title={selection.title}
            record={selection.record}
            connected={connected}
          />
        )}
      </main>
    </div>
  );
}
