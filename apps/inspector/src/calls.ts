/** Finished calls from the HTTP API; an inspector's token lists every agent's calls. */
import { createHttpClient, HttpRequestError } from '@callchart/client/http';
import { callListRoute, type CallPage, type CallRecord } from '@callchart/machines';

export type { CallPage };

/** The token was refused: the inspector has to log in again. */
export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';
}

export const CALL_PAGE_SIZE = 25;

export async function fetchCalls(token: string, before?: string): Promise<CallPage> {
  try {
    return await createHttpClient({ token }).request(callListRoute, { query: { limit: CALL_PAGE_SIZE, before } });
  } catch (cause) {
    if (cause instanceof HttpRequestError && cause.status === 401) {
      throw new UnauthorizedError('Your session has expired. Please log in again.', { cause });
    }
    throw cause;
  }
}

/** Calls still in progress are in the live list; the finished list shows the others. */
export function finishedCalls(calls: readonly CallRecord[]): CallRecord[] {
  return calls.filter((call) => call.endedAt !== null);
}
