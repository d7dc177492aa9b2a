/**
 * The agent's login. The token lives in sessionStorage: a reload keeps the agent logged in, and closing
 * the tab forgets it.
 */

export interface AgentProfile {
  id: string;
  name: string;
  pools: string[];
  roles: string[];
}

export interface AgentSession {
  token: string;
  /** Epoch ms. */
  expiresAt: number;
  agent: AgentProfile;
}

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

/** A failure the agent may read: one sentence. */
export class LoginError extends Error {
  override readonly name = 'LoginError';
}

export async function logIn(email: string, password: string): Promise<AgentSession> {
  let response: Response;
  try {
    response = await fetch('/api/agents/login', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
  } catch (cause) {
    throw new LoginError('The server could not be reached. Check your connection and try again.', { cause });
  }
  const body = (await response.json().catch(() => null)) as (AgentSession & { error?: { message?: string } }) | null;
  if (!response.ok || body === null) {
    throw new LoginError(body?.error?.message ?? 'Logging in failed. Please try again.');
  }
  return { token: body.token, expiresAt: body.expiresAt, agent: body.agent };
}
