import type { LiveRequest } from '@callchart/machines';
import { stateLabel } from './stateValue.ts';

export function LiveList({ requests, selectedId, onSelect }: { requests: LiveRequest[] | null; selectedId: string | null; onSelect: (requestId: string) => void }) {
  return (
    <section className="side-section" aria-labelledby="live-heading">
      <h2 id="live-heading">
        Live {requests !== null && <span className="count">{requests.length}</span>}
      </h2>
      {requests === null ? (
        <p className="subtle">Waiting for the server…</p>
      ) : requests.length === 0 ? (
        <p className="subtle">No live requests. A visitor asking for an agent shows up here.</p>
      ) : (
        <ul className="pick-list">
          {requests.map((request) => (
            <li key={request.requestId}>
              <button
                type="button"
                className="pick"
                aria-current={request.requestId === selectedId ? 'true' : undefined}
                data-request-id={request.requestId}
                onClick={() => onSelect(request.requestId)}
              >
                <span className="pick-title">{request.visitorName}</span>
                <span className="pick-meta">
                  {request.pool} · {request.agentName ?? 'no agent yet'}
                  {request.node !== undefined && (
                    <>
                      {' '}
                      · on <code data-node={request.node}>{request.node}</code>
                    </>
                  )}
                </span>
                <span className="pick-states">
                  routing <code>{stateLabel(request.state)}</code>
                  {request.call && (
                    <>
                      {' '}
                      · call <code>{stateLabel(request.call.state)}</code>
                    </>
                  )}
                </span>
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
