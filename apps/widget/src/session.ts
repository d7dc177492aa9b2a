/** The visitor's session token, issued by the server the widget was loaded from. */

export interface VisitorSession {
  token: string;
  visitorId: string;
  name: string;
  expiresAt: number;
}

/** A failure the visitor may read: one sentence, no details. */
export class SessionError extends Error {
  override readonly name = 'SessionError';
}

export async function fetchVisitorSession(origin: string, name?: string): Promise<VisitorSession> {
  let response: Response;
  try {
    response = await fetch(`${origin}/api/visitor-session`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(name ? { name } : {}),
    });
  } catch (cause) {
    throw new SessionError('We could not reach our support service. Check your connection and try again.', { cause });
  }
  if (response.status === 403 && (await errorCode(response)) === 'origin-not-allowed') {
    // Nothing the visitor can do: this site is not one the service was set up for.
    throw new SessionError('Video calls are not enabled for this website.', { cause: new Error('origin-not-allowed') });
  }
  if (!response.ok) {
    throw new SessionError('Video calls are not available right now. Please try again later.', {
      cause: new Error(`POST /api/visitor-session answered ${response.status}`),
    });
  }
  return (await response.json()) as VisitorSession;
}

async function errorCode(response: Response): Promise<string | null> {
  try {
    const body = (await response.json()) as { error?: { code?: unknown } };
    return typeof body.error?.code === 'string' ? body.error.code : null;
  } catch {
    return null;
  }
}
