/** Finished calls from the HTTP API; an inspector's token lists every agent's calls. */
import { createHttpClient } from '@callchart/client/http';
import { callListRoute, type CallPage, type CallRecord } from '@callchart/machines';
import { authorized } from '@callchart/ui';

export type { CallPage };

export const CALL_PAGE_SIZE = 25;

/** A refused token is an `UnauthorizedError`: the inspector has to log in again. */
export function fetchCalls(token: string, before?: string): Promise<CallPage> {
  return authorized(createHttpClient({ token }).request(callListRoute, { query: { limit: CALL_PAGE_SIZE, before } }));
}

/** Calls still in progress are in the live list; the finished list shows the others. */
export function finishedCalls(calls: readonly CallRecord[]): CallRecord[] {
  return calls.filter((call) => call.endedAt !== null);
}
