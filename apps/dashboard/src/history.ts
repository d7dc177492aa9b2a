/** Call history from the HTTP API, read with the agent's bearer token. */

export interface CallRecord {
  id: string;
  visitorName: string;
  agentName: string;
  pool: string;
  state: string;
  startedAt: number;
  connectedAt: number | null;
  endedAt: number | null;
  endReason: string | null;
  totalPauseMs: number;
}

export interface CallTelemetry {
  disconnections: { leg: string; at: number; cause: string | null }[];
  reconnectionAttempts: { leg: string; at: number; durationMs: number; outcome: string }[];
  totalPauseMs: number;
}

export interface CallWithTelemetry {
  call: CallRecord;
  telemetry: CallTelemetry;
}

export type ExportFormat = 'csv' | 'json';

/** The token was refused: the agent has to log in again. */
export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';
}

async function get(token: string, url: string): Promise<Response> {
  const response = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
  if (response.status === 401) throw new UnauthorizedError('Your session has expired. Please log in again.');
  if (!response.ok) throw new Error(`GET ${url} answered ${response.status}`);
  return response;
}

const HISTORY_LIMIT = 20;

export async function fetchHistory(token: string): Promise<CallWithTelemetry[]> {
  const { calls } = (await (await get(token, `/api/calls?limit=${HISTORY_LIMIT}`)).json()) as { calls: CallRecord[] };
  // The list carries no telemetry; each call's detail does.
  return Promise.all(
    calls.map(async (call) => {
      const detail = (await (await get(token, `/api/calls/${encodeURIComponent(call.id)}`)).json()) as CallWithTelemetry;
      return { call: detail.call, telemetry: detail.telemetry };
    }),
  );
}

/** Fetches an export with the token (a plain link could not carry it) and saves it as a download. */
export async function downloadExport(token: string, callId: string, format: ExportFormat): Promise<void> {
  const response = await get(token, `/api/calls/${encodeURIComponent(callId)}/export?format=${format}`);
  const blob = await response.blob();
  const disposition = response.headers.get('Content-Disposition') ?? '';
  const filename = /filename="?([^";]+)"?/i.exec(disposition)?.[1] ?? `call-${callId.replaceAll(':', '_')}.${format}`;
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  // Revoked on the next turn: the download has taken its reference by then.
  setTimeout(() => URL.revokeObjectURL(url), 0);
}
