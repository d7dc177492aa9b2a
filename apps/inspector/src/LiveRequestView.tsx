import type { Feed } from './feed.ts';
import type { LiveRequest } from '@callchart/machines';
import { RequestView } from './RequestView.tsx';
import { stateLabel } from './stateValue.ts';
import { useLiveRequest } from './useLiveRequest.ts';

export function LiveRequestView({
  feed,
  request,
  ended,
  clientInspection,
  connected,
  onOpenCall,
}: {
  feed: Feed;
  /** The request as the live list last showed it (with the node that runs it, in a cluster). */
  request: LiveRequest;
  /** It has left the live list: no more entries will come. */
  ended: boolean;
  clientInspection: boolean | null;
  connected: boolean;
  onOpenCall: (callId: string) => void;
}) {
  const { requestId } = request;
  const { entries, actors, error } = useLiveRequest(feed, requestId, connected);
  const callId = request.call?.callId ?? entries.findLast((entry) => entry.callId !== null)?.callId ?? null;

  const notice = (
    <>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {clientInspection === false && (
        <p className="subtle">
          Only the server’s machines are shown: the server runs without <code>INSPECT_CLIENTS=on</code>, so the agent’s and the visitor’s
          browsers do not report theirs.
        </p>
      )}
      {ended && (
        <p className="notice">
          This request has ended; what it did until then stays here.{' '}
          {callId && (
            <button type="button" className="link-button" onClick={() => onOpenCall(callId)}>
              Open its call’s stored history
            </button>
          )}
        </p>
      )}
    </>
  );

  return (
    <RequestView
      heading={
        <>
          <h1>
            {request.visitorName} <span className="subtle">{ended ? 'ended request' : 'live request'}</span>
          </h1>
          <p className="subtle">
            <code>{requestId}</code> · pool {request.pool} · {request.agentName ?? 'no agent yet'}
            {request.node !== undefined && (
              <>
                {' '}
                · on node <code>{request.node}</code>
              </>
            )}{' '}
            · routing <code>{stateLabel(request.state)}</code>
            {request.call && (
              <>
                {' '}
                · call <code>{stateLabel(request.call.state)}</code>
              </>
            )}
          </p>
        </>
      }
      notice={notice}
      entries={entries}
      baseline={actors}
      live={!ended}
      contextStored
    />
  );
}
