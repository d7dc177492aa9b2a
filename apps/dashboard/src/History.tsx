import { useCallback, useEffect, useRef, useState } from 'react';
import { useSelector } from '@xstate/react';
import type { AgentClient } from '@callchart/client';
import { downloadExport, fetchHistory, UnauthorizedError, type CallWithTelemetry, type ExportFormat } from './history.ts';

// The server records the end of a call as it relays it; a second look catches a record still closing.
const SETTLE_MS = 1500;

const endReasons: Record<string, string> = {
  hangup: 'Hung up',
  'media-failed': 'Media failed',
  'reconnect-timeout': 'Reconnection timed out',
  reassigned: 'Reassigned',
  error: 'Error',
};

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

function formatDuration(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${String(seconds % 60).padStart(2, '0')} s`;
}

function formatPause(ms: number): string {
  return ms === 0 ? 'none' : ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : formatDuration(ms);
}

export function History({ token, client, onUnauthorized }: { token: string; client: AgentClient; onUnauthorized: () => void }) {
  const [calls, setCalls] = useState<CallWithTelemetry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const latest = useRef(0);
  // Changes exactly when a call (or a ring) ends.
  const lastCallEnd = useSelector(client.call, (s) => s.context.lastCallEnd);

  const load = useCallback(async () => {
    const request = ++latest.current;
    setLoading(true);
    try {
      const next = await fetchHistory(token);
      if (request !== latest.current) return;
      setCalls(next);
      setError(null);
    } catch (cause) {
      if (cause instanceof UnauthorizedError) return onUnauthorized();
      console.warn('[callchart] call history failed', cause);
      if (request === latest.current) setError('The call history could not be loaded.');
    } finally {
      if (request === latest.current) setLoading(false);
    }
  }, [token, onUnauthorized]);

  useEffect(() => {
    void load();
    if (lastCallEnd === null) return;
    const timer = setTimeout(() => void load(), SETTLE_MS);
    return () => clearTimeout(timer);
  }, [load, lastCallEnd]);

  return (
    <section className="card history" aria-labelledby="history-heading" aria-busy={loading}>
      <div className="card-head">
        <h2 id="history-heading">Call history</h2>
        <button type="button" className="button ghost small" onClick={() => void load()}>
          Refresh
        </button>
      </div>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      {calls === null ? (
        <p className="subtle">Loading…</p>
      ) : calls.length === 0 ? (
        <p className="subtle">No calls yet. Calls you take appear here with their reconnection telemetry.</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Visitor</th>
                <th scope="col">Started</th>
                <th scope="col">Duration</th>
                <th scope="col">Ended</th>
                <th scope="col">Disconnections</th>
                <th scope="col">Reconnection attempts</th>
                <th scope="col">Paused</th>
                <th scope="col">Export</th>
              </tr>
            </thead>
            <tbody>
              {calls.map((entry) => (
                <HistoryRow key={entry.call.id} entry={entry} token={token} onUnauthorized={onUnauthorized} />
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function HistoryRow({ entry, token, onUnauthorized }: { entry: CallWithTelemetry; token: string; onUnauthorized: () => void }) {
  const { call, telemetry } = entry;
  const [exportError, setExportError] = useState<string | null>(null);
  const started = timeFormat.format(call.startedAt);
  const attempts = telemetry.reconnectionAttempts;
  const recovered = attempts.filter((attempt) => attempt.outcome === 'recovered').length;
  const duration = call.endedAt === null ? 'In progress' : formatDuration(call.endedAt - (call.connectedAt ?? call.startedAt));
  const ended = call.endedAt === null ? '—' : (endReasons[call.endReason ?? ''] ?? call.endReason ?? '—');

  const save = async (format: ExportFormat) => {
    setExportError(null);
    try {
      await downloadExport(token, call.id, format);
    } catch (cause) {
      if (cause instanceof UnauthorizedError) return onUnauthorized();
      console.warn('[callchart] export failed', cause);
      setExportError('The export failed.');
    }
  };

  return (
    <tr data-call-id={call.id}>
      <th scope="row">{call.visitorName}</th>
      <td>
        <time dateTime={new Date(call.startedAt).toISOString()}>{started}</time>
      </td>
      <td>{duration}</td>
      <td>{ended}</td>
      <td className="num">{telemetry.disconnections.length}</td>
      <td className="num">{attempts.length === 0 ? '0' : `${attempts.length} (${recovered} recovered)`}</td>
      <td className="num">{formatPause(telemetry.totalPauseMs)}</td>
      <td>
        <div className="export">
          {(['csv', 'json'] as const).map((format) => (
            <button
              key={format}
              type="button"
              className="button ghost small"
              aria-label={`Export ${format.toUpperCase()} of the call with ${call.visitorName} at ${started}`}
              onClick={() => void save(format)}
            >
              Export {format.toUpperCase()}
            </button>
          ))}
        </div>
        {exportError && (
          <span className="form-error" role="alert">
            {exportError}
          </span>
        )}
      </td>
    </tr>
  );
}
