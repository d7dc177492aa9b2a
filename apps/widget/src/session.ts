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
  if (!response.ok) {
    throw new SessionError('Video calls are not available right now. Please try again later.', {
      cause: new Error(`POST /api/visitor-session answered ${response.status}`),
    });
  }
  return (await response.json()) as VisitorSession;
}
