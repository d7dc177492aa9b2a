/** Finished calls from the HTTP API; an inspector's token lists every agent's calls. */
import type { CallRecord } from './wire.ts';

/** The token was refused: the inspector has to log in again. */
export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';
}

export interface CallPage {
  calls: CallRecord[];
  /** The cursor for the next, older page; null on the last one. */
  next: string | null;
}

export const CALL_PAGE_SIZE = 25;

export async function fetchCalls(token: string, before?: string): Promise<CallPage> {
  const query = new URLSearchParams({ limit: String(CALL_PAGE_SIZE) });
  if (before !== undefined) query.set('before', before);
  const response = await fetch(`/api/calls?${query}`, { headers: { Authorization: `Bearer ${token}` } });
  if (response.status === 401) throw new UnauthorizedError('Your session has expired. Please log in again.');
  if (!response.ok) throw new Error(`GET /api/calls answered ${response.status}`);
  return (await response.json()) as CallPage;
}

/** Calls still in progress are in the live list; the finished list shows the others. */
export function finishedCalls(calls: readonly CallRecord[]): CallRecord[] {
  return calls.filter((call) => call.endedAt !== null);
}
