/**
 * The agent's login. The token lives in sessionStorage: a reload keeps the agent logged in, and closing
 * the tab forgets it.
 */
import { createHttpClient, HttpRequestError } from '@callchart/client/http';
import { loginRoute, type AgentSession } from '@callchart/machines';
import type { AgentPlainKey } from '@callchart/machines/locales';

export type { AgentSession };

const STORAGE_KEY = 'callchart.agentSession';

export function loadSession(now = Date.now()): AgentSession | null {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (raw === null) return null;
    const session = JSON.parse(raw) as AgentSession;
    if (typeof session.token !== 'string' || !(session.expiresAt > now)) {
      sessionStorage.removeItem(STORAGE_KEY);
      return null;
    }
    return session;
  } catch {
    return null;
  }
}

export function saveSession(session: AgentSession): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** A failure the agent may read: one sentence of their catalogue. */
export class LoginError extends Error {
  override readonly name = 'LoginError';

  constructor(
    readonly text: AgentPlainKey,
    options?: ErrorOptions,
  ) {
    super(text, options);
  }
}

export async function logIn(email: string, password: string): Promise<AgentSession> {
  try {
    return await createHttpClient().request(loginRoute, { body: { email, password } });
  } catch (cause) {
    if (cause instanceof HttpRequestError && cause.failure === 'unreachable') {
      throw new LoginError('agent.login.unreachable', { cause });
    }
    // The server's refusal is an English sentence; its code says which of the agent's to show.
    const refused = cause instanceof HttpRequestError && cause.status === 401 && cause.error?.code === 'unauthorized';
    throw new LoginError(refused ? 'agent.login.incorrect' : 'agent.login.failed', { cause });
  }
}
