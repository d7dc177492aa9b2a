/** Call history from the HTTP API, read with the agent's bearer token. */
import { createHttpClient } from '@callchart/client/http';
import { callDetailRoute, callExportRoute, callListRoute, type CallDetail, type ExportFormat } from '@callchart/machines';
import { authorized } from '@callchart/ui';

export type { ExportFormat };
export type CallWithTelemetry = Pick<CallDetail, 'call' | 'telemetry'>;

const HISTORY_LIMIT = 20;

export async function fetchHistory(token: string): Promise<CallWithTelemetry[]> {
  const api = createHttpClient({ token });
  const { calls } = await authorized(api.request(callListRoute, { query: { limit: HISTORY_LIMIT } }));
  // The list carries no telemetry; each call's detail does.
  return Promise.all(
    calls.map(async (call) => {
      const detail = await authorized(api.request(callDetailRoute, { params: { id: call.id } }));
      return { call: detail.call, telemetry: detail.telemetry };
    }),
  );
}

/** Fetches an export with the token (a plain link could not carry it) and saves it as a download. */
export async function downloadExport(token: string, callId: string, format: ExportFormat): Promise<void> {
  const { blob, filename } = await authorized(createHttpClient({ token }).download(callExportRoute, { params: { id: callId }, query: { format } }));
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename ?? `call-${callId.replaceAll(':', '_')}.${format}`;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked on the next turn: the download has taken its reference by then.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
