/**
 * How the server's edges (the HTTP API, token checks, the inspector) read the store: a read that fails
 * or does not answer in time means the store is unavailable, and the caller is told so in words of its
 * own instead of crashing, hanging, or taking a database error for "no such thing".
 */

/**
 * Long enough for a loaded database, short enough that a client is answered before it gives up on
 * its own: a Postgres behind a dropped network can leave a query waiting for minutes.
 */
export const STORE_READ_DEADLINE_MS = 5_000;

/** The store could not answer: it failed, or it did not answer within the deadline. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  readonly code = 'store-unavailable' as const;
  constructor(options?: { cause?: unknown }) {
    super('The store is unavailable.', options);
  }
}

/** `read`'s answer, or `StoreUnavailableError` when it rejects or is still pending after `deadlineMs`. */
export async function storeRead<T>(read: Promise<T>, deadlineMs = STORE_READ_DEADLINE_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new StoreUnavailableError({ cause: new Error(`no answer within ${String(deadlineMs)} ms`) })), deadlineMs);
    // A read still pending when the process is done must not keep it alive.
    timer.unref();
  });
  try {
    return await Promise.race([read, late]);
  } catch (error) {
    throw error instanceof StoreUnavailableError ? error : new StoreUnavailableError({ cause: error });
  } finally {
    clearTimeout(timer);
  }
}
