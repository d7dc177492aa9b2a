/**
 * The inspector's login: an agent account with the `inspector` role. The token lives in sessionStorage
 * under its own key, so the inspector and the dashboard can be open side by side as different accounts.
 */
import { createHttpClient, HttpRequestError } from '@callchart/client/http';
import { loginRoute, type AgentSession } from '@callchart/machines';

/** An agent's session whose account has the inspector role. */
export type InspectorSession = AgentSession;

export const INSPECTOR_ROLE = 'inspector';
const STORAGE_KEY = 'callchart.inspectorSession';

export function loadSession(now = Date.now()): InspectorSession | null {
  try {
    const raw = sessionStorage.getItem(STORAGE_KEY);
    if (raw === null) return null;
    const session = JSON.parse(raw) as InspectorSession;
    if (typeof session.token !== 'string' || !(session.expiresAt > now) || !session.agent?.roles?.includes(INSPECTOR_ROLE)) {
      sessionStorage.removeItem(STORAGE_KEY);
      return null;
    }
    return session;
  } catch {
    return null;
  }
}

export function saveSession(session: InspectorSession): void {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(): void {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** A failure the person logging in may read: one sentence. */
export class LoginError extends Error {
  override readonly name = 'LoginError';
}

export function missingRoleMessage(name: string): string {
  return `${name}'s account lacks the inspector role, so it cannot open the inspector. Log in with an inspector account.`;
}

export async function logIn(email: string, password: string): Promise<InspectorSession> {
  let session: AgentSession;
  try {
    session = await createHttpClient().request(loginRoute, { body: { email, password } });
  } catch (cause) {
    if (cause instanceof HttpRequestError && cause.failure === 'unreachable') {
      throw new LoginError('The server could not be reached. Check your connection and try again.', { cause });
    }
    // The server's refusal is one sentence meant for the person at the form.
    const message = cause instanceof HttpRequestError ? cause.error?.message : undefined;
    throw new LoginError(message ?? 'Logging in failed. Please try again.', { cause });
  }
  // The server would refuse the feed anyway; saying so here keeps the person on the form they can fix.
  if (!session.agent.roles.includes(INSPECTOR_ROLE)) throw new LoginError(missingRoleMessage(session.agent.name));
  return session;
}
