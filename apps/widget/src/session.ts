/** The visitor's session token, issued by the server the widget was loaded from. */
import { createHttpClient, HttpRequestError } from '@callchart/client/http';
import { visitorSessionRoute, type VisitorSession } from '@callchart/machines';
import type { VisitorPlainKey } from '@callchart/machines/locales';

export type { VisitorSession };

/** A failure the visitor may read: one sentence of their catalogue, no details. */
export class SessionError extends Error {
  override readonly name = 'SessionError';

  constructor(
    readonly text: VisitorPlainKey,
    options?: ErrorOptions,
  ) {
    super(text, options);
  }
}

export async function fetchVisitorSession(origin: string, name?: string): Promise<VisitorSession> {
  try {
    return await createHttpClient({ baseUrl: origin }).request(visitorSessionRoute, { body: name ? { name } : {} });
  } catch (cause) {
    if (cause instanceof HttpRequestError && cause.failure === 'unreachable') throw new SessionError('visitor.error.unreachable', { cause });
    if (cause instanceof HttpRequestError && cause.error?.code === 'origin-not-allowed') {
      // Nothing the visitor can do: this site is not one the service was set up for.
      throw new SessionError('visitor.error.originNotAllowed', { cause });
    }
    throw new SessionError('visitor.error.unavailable', { cause });
  }
}
