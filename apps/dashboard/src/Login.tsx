import { useId, useState, type FormEvent } from 'react';
import { logIn, LoginError, type AgentSession } from './session.ts';

export function Login({ notice, onLoggedIn }: { notice: string | null; onLoggedIn: (session: AgentSession) => void }) {
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
      setError(cause instanceof LoginError ? cause.message : 'Logging in failed. Please try again.');
      setPending(false);
    }
  };

  return (
    <main className="login-page">
      <form className="login-card" onSubmit={submit} aria-describedby={error ? errorId : undefined} noValidate={false}>
        <div className="brand">
          <span className="brand-mark" aria-hidden="true" />
          <span>Acme Support</span>
        </div>
        <h1>Agent dashboard</h1>
        <p className="subtle">Log in to take video calls from visitors.</p>
        {notice && !error && <p className="notice">{notice}</p>}
        <div className="field">
          <label htmlFor={emailId}>Email</label>
          <input id={emailId} name="email" type="email" autoComplete="username" required autoFocus />
        </div>
        <div className="field">
          <label htmlFor={passwordId}>Password</label>
          <input id={passwordId} name="password" type="password" autoComplete="current-password" required />
        </div>
        <div role="alert" id={errorId} className="form-error">
          {error}
        </div>
        <button type="submit" className="button primary wide" disabled={pending}>
          {pending ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
