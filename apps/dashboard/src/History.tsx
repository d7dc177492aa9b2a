import { useCallback, useEffect, useRef, useState } from 'react';
import { useSelector } from '@xstate/react';
import type { AgentClient } from '@callchart/client';
import type { AgentPlainKey, AgentTranslator } from '@callchart/machines/locales';
import { UnauthorizedError } from '@callchart/ui';
import { downloadExport, fetchHistory, type CallWithTelemetry, type ExportFormat } from './history.ts';
import { useLocale } from './locale.ts';

// The server records the end of a call as it relays it; a second look catches a record still closing.
const SETTLE_MS = 1500;

const endReasons: Partial<Record<string, AgentPlainKey>> = {
  hangup: 'agent.endReason.hangup',
  'media-failed': 'agent.endReason.mediaFailed',
  'reconnect-timeout': 'agent.endReason.reconnectTimeout',
  reassigned: 'agent.endReason.reassigned',
  error: 'agent.endReason.error',
};

function formatDuration(locale: AgentTranslator, ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return locale.t('agent.seconds', { seconds });
  return locale.t('agent.minutesSeconds', { minutes: Math.floor(seconds / 60), seconds: String(seconds % 60).padStart(2, '0') });
}

function formatPause(locale: AgentTranslator, ms: number): string {
  if (ms === 0) return locale.t('agent.history.noPause');
  if (ms >= 10_000) return formatDuration(locale, ms);
  return locale.t('agent.seconds', { seconds: locale.number(ms / 1000, { minimumFractionDigits: 1, maximumFractionDigits: 1 }) });
}

export function History({ token, client, onUnauthorized }: { token: string; client: AgentClient; onUnauthorized: () => void }) {
  const locale = useLocale();
  const [calls, setCalls] = useState<CallWithTelemetry[] | null>(null);
  const [error, setError] = useState<AgentPlainKey | null>(null);
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
      if (request === latest.current) setError('agent.history.loadFailed');
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
        <h2 id="history-heading">{locale.t('agent.history.heading')}</h2>
        <button type="button" className="button ghost small" onClick={() => void load()}>
          {locale.t('agent.history.refresh')}
        </button>
      </div>
      {error && (
        <p className="form-error" role="alert">
          {locale.t(error)}
        </p>
      )}
      {calls === null ? (
        <p className="subtle">{locale.t('agent.history.loading')}</p>
      ) : calls.length === 0 ? (
        <p className="subtle">{locale.t('agent.history.empty')}</p>
      ) : (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                {columns.map((column) => (
                  <th key={column} scope="col">
                    {locale.t(column)}
                  </th>
                ))}
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

const columns = [
  'agent.history.column.visitor',
  'agent.history.column.started',
  'agent.history.column.duration',
  'agent.history.column.ended',
  'agent.history.column.disconnections',
  'agent.history.column.attempts',
  'agent.history.column.paused',
  'agent.history.column.export',
] as const;

function HistoryRow({ entry, token, onUnauthorized }: { entry: CallWithTelemetry; token: string; onUnauthorized: () => void }) {
  const locale = useLocale();
  const { call, telemetry } = entry;
  const [exportError, setExportError] = useState(false);
  const started = locale.dateTime(call.startedAt, { dateStyle: 'medium', timeStyle: 'short' });
  const attempts = telemetry.reconnectionAttempts;
  const recovered = attempts.filter((attempt) => attempt.outcome === 'recovered').length;
  const duration = call.endedAt === null ? locale.t('agent.history.inProgress') : formatDuration(locale, call.endedAt - (call.connectedAt ?? call.startedAt));
  const endReason = endReasons[call.endReason ?? ''];
  // A reason this dashboard has no words for still shows, as the server names it.
  const ended = call.endedAt === null ? '—' : endReason ? locale.t(endReason) : (call.endReason ?? '—');

  const save = async (format: ExportFormat) => {
    setExportError(false);
    try {
      await downloadExport(token, call.id, format);
    } catch (cause) {
      if (cause instanceof UnauthorizedError) return onUnauthorized();
      console.warn('[callchart] export failed', cause);
      setExportError(true);
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
      <td className="num">{locale.number(telemetry.disconnections.length)}</td>
      <td className="num">{attempts.length === 0 ? locale.number(0) : locale.t('agent.history.attempts', { count: attempts.length, recovered })}</td>
      <td className="num">{formatPause(locale, telemetry.totalPauseMs)}</td>
      <td>
        <div className="export">
          {(['csv', 'json'] as const).map((format) => (
            <button
              key={format}
              type="button"
              className="button ghost small"
              aria-label={locale.t('agent.history.exportLabel', { format: format.toUpperCase(), name: call.visitorName, started })}
              onClick={() => void save(format)}
            >
              {locale.t('agent.history.export', { format: format.toUpperCase() })}
            </button>
          ))}
        </div>
        {exportError && (
          <span className="form-error" role="alert">
            {locale.t('agent.history.exportFailed')}
          </span>
        )}
      </td>
    </tr>
  );
}
