import { useId, useState, type FormEvent, type ReactNode } from 'react';
import { LoginError, type AgentSession } from './session.ts';

/** What the form says, in the app's language; each app styles the form's classes itself. */
export interface LoginWords {
  brand: ReactNode;
  title: string;
  intro: string;
  email: string;
  password: string;
  submit: string;
  pending: string;
  /** The sentence the form shows for a failed login. */
  failure: (error: LoginError) => string;
}

export interface LoginProps {
  words: LoginWords;
  /** Why the person is back at the form (a session that ended), or null. */
  notice: string | null;
  logIn: (email: string, password: string) => Promise<AgentSession>;
  onLoggedIn: (session: AgentSession) => void;
}

export function Login({ words, notice, logIn, onLoggedIn }: LoginProps) {
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);
  const emailId = useId();
  const passwordId = useId();
  const errorId = useId();

  const submit = async (event: FormEvent<HTMLFormElement>) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    setPending(true);
    setError(null);
    try {
      onLoggedIn(await logIn(String(form.get('email') ?? ''), String(form.get('password') ?? '')));
    } catch (cause) {
      setError(words.failure(cause instanceof LoginError ? cause : new LoginError('failed', {}, { cause })));
      setPending(false);
    }
  };

  return (
    <main className="login-page">
      <form className="login-card" onSubmit={submit} aria-describedby={error ? errorId : undefined}>
        <div className="brand">{words.brand}</div>
        <h1>{words.title}</h1>
        <p className="subtle">{words.intro}</p>
        {notice && !error && <p className="notice">{notice}</p>}
        <div className="field">
          <label htmlFor={emailId}>{words.email}</label>
          <input id={emailId} name="email" type="email" autoComplete="username" required autoFocus />
        </div>
        <div className="field">
          <label htmlFor={passwordId}>{words.password}</label>
          <input id={passwordId} name="password" type="password" autoComplete="current-password" required />
        </div>
        <div role="alert" id={errorId} className="form-error">
          {error}
        </div>
        <button type="submit" className="button primary wide" disabled={pending}>
          {pending ? words.pending : words.submit}
        </button>
      </form>
    </main>
  );
}
