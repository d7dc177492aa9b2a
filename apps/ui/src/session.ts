/**
 * An agent account's login and the session it keeps. The token lives in sessionStorage under each app's
 * own key: a reload keeps the person logged in, closing the tab forgets it, and the dashboard and the
 * inspector can be open side by side as different accounts.
 */
import { createHttpClient, HttpRequestError } from '@callchart/client/http';
import { AgentSession, loginRoute } from '@callchart/machines';

export { AgentSession };

/**
 * Why a login failed, for each app to say in its own words: `incorrect` is a wrong email or password,
 * `refused` any other answer the server turned the login down with, `missingRole` an account that
 * logged in but lacks the role the app needs.
 */
export type LoginFailure = 'unreachable' | 'incorrect' | 'refused' | 'missingRole' | 'failed';

export class LoginError extends Error {
  override readonly name = 'LoginError';

  constructor(
    readonly failure: LoginFailure,
    readonly detail: {
      /** The server's sentence, in English, when it answered with one. */
      serverMessage?: string | undefined;
      /** The account that logged in, on `missingRole`. */
      session?: AgentSession;
    } = {},
    options?: ErrorOptions,
  ) {
    super(detail.serverMessage ?? failure, options);
  }
}

/** The server refused the session's token: the person has to log in again. */
export class UnauthorizedError extends Error {
  override readonly name = 'UnauthorizedError';
}

/** `request`'s answer, with the server's 401 turned into an `UnauthorizedError`. */
export async function authorized<T>(request: Promise<T>): Promise<T> {
  try {
    return await request;
  } catch (cause) {
    if (cause instanceof HttpRequestError && cause.status === 401) {
      throw new UnauthorizedError('Your session has expired. Please log in again.', { cause });
    }
    throw cause;
  }
}

export interface SessionStoreOptions {
  /** The sessionStorage key the app keeps its session under. */
  storageKey: string;
  /** A role the account must have; a session without it is neither kept nor handed out. */
  requiredRole?: string;
}

export interface SessionStore {
  /** The kept session, or null when there is none, it has expired, or it lacks the required role. */
  load(now?: number): AgentSession | null;
  save(session: AgentSession): void;
  clear(): void;
  /** Logs in; a failure is a `LoginError`. */
  logIn(email: string, password: string): Promise<AgentSession>;
}

export function sessionStore({ storageKey, requiredRole }: SessionStoreOptions): SessionStore {
  const hasRole = (session: AgentSession) => requiredRole === undefined || session.agent.roles.includes(requiredRole);

  return {
    load(now = Date.now()) {
      try {
        const raw = sessionStorage.getItem(storageKey);
        if (raw === null) return null;
        const parsed = AgentSession.safeParse(JSON.parse(raw));
        if (!parsed.success || !(parsed.data.expiresAt > now) || !hasRole(parsed.data)) {
          sessionStorage.removeItem(storageKey);
          return null;
        }
        return parsed.data;
      } catch {
        return null;
      }
    },
    save(session) {
      sessionStorage.setItem(storageKey, JSON.stringify(session));
    },
    clear() {
      sessionStorage.removeItem(storageKey);
    },
    async logIn(email, password) {
      let session: AgentSession;
      try {
        session = await createHttpClient().request(loginRoute, { body: { email, password } });
      } catch (cause) {
        if (!(cause instanceof HttpRequestError)) throw new LoginError('failed', {}, { cause });
        if (cause.failure === 'unreachable') throw new LoginError('unreachable', {}, { cause });
        // The server's sentence is English; its code says which of an app's own sentences fits.
        const incorrect = cause.status === 401 && cause.error?.code === 'unauthorized';
        const failure = incorrect ? 'incorrect' : cause.failure === 'refused' ? 'refused' : 'failed';
        throw new LoginError(failure, { serverMessage: cause.error?.message }, { cause });
      }
      // The server would refuse the app's requests anyway; saying so here keeps the person on the form they can fix.
      if (!hasRole(session)) throw new LoginError('missingRole', { session });
      return session;
    },
  };
}
