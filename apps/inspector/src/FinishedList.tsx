import { useCallback, useEffect, useRef, useState } from 'react';
import type { CallRecord } from '@callchart/machines';
import { UnauthorizedError } from '@callchart/ui';
import { fetchCalls, finishedCalls } from './calls.ts';

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });

export function FinishedList({
  token,
  selectedId,
  refreshKey,
  onSelect,
  onUnauthorized,
}: {
  token: string;
  selectedId: string | null;
  /** A change asks for a fresh list: the page bumps it when a live request ends. */
  refreshKey: number;
  onSelect: (call: CallRecord) => void;
  onUnauthorized: () => void;
}) {
  const [calls, setCalls] = useState<CallRecord[] | null>(null);
  const [next, setNext] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  // Only the latest load may write: a slow answer to an older one must not replace a newer list.
  const latest = useRef(0);
  // Read through a ref, so that a new callback from the parent is not a reason to load again.
  const unauthorized = useRef(onUnauthorized);
  useEffect(() => {
    unauthorized.current = onUnauthorized;
  }, [onUnauthorized]);

  const load = useCallback(
    async (before?: string) => {
      const request = ++latest.current;
      setLoading(true);
      try {
        const page = await fetchCalls(token, before);
        if (request !== latest.current) return;
        setCalls((calls) => (before === undefined ? page.calls : [...(calls ?? []), ...page.calls]));
        setNext(page.next);
        setError(null);
      } catch (cause) {
        if (cause instanceof UnauthorizedError) return unauthorized.current();
        console.warn('[callchart] listing calls failed', cause);
        if (request === latest.current) setError('The finished calls could not be loaded.');
      } finally {
        if (request === latest.current) setLoading(false);
      }
    },
    [token],
  );

  useEffect(() => {
    void load();
  }, [load, refreshKey]);

  const finished = calls === null ? null : finishedCalls(calls);
  return (
    <section className="side-section" aria-labelledby="finished-heading" aria-busy={loading}>
      <div className="side-head">
        <h2 id="finished-heading">Finished</h2>
        <button type="button" className="button small" onClick={() => void load()} disabled={loading}>
          Refresh
        </button>
      </div>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {finished === null ? (
        <p className="subtle">Loading…</p>
      ) : finished.length === 0 ? (
        <p className="subtle">No finished calls yet.</p>
      ) : (
        <ul className="pick-list">
          {finished.map((call) => (
            <li key={call.id}>
              <button type="button" className="pick" aria-current={call.id === selectedId ? 'true' : undefined} data-call-id={call.id} onClick={() => onSelect(call)}>
                <span className="pick-title">
                  {call.visitorName} <span className="subtle">with</span> {call.agentName}
                </span>
                <span className="pick-meta">
                  <time dateTime={new Date(call.startedAt).toISOString()}>{timeFormat.format(call.startedAt)}</time> · {call.pool}
                </span>
                <span className="pick-states">ended {call.endReason ?? call.state}</span>
              </button>
            </li>
          ))}
        </ul>
      )}
      {next !== null && (
        <button type="button" className="button small" onClick={() => void load(next)} disabled={loading}>
          Older calls
        </button>
      )}
    </section>
  );
}
