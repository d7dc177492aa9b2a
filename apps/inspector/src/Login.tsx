import { useId, useState, type FormEvent } from 'react';
import { logIn, LoginError, type InspectorSession } from './session.ts';

export function Login({ notice, onLoggedIn }: { notice: string | null; onLoggedIn: (session: InspectorSession) => void }) {
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
      <form className="login-card" onSubmit={submit} aria-describedby={error ? errorId : undefined}>
        <p className="brand">callchart</p>
        <h1>Inspector</h1>
        <p className="subtle">Watch the statecharts of live calls and replay finished ones. Needs an account with the inspector role.</p>
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
        <button type="submit" className="button primary" disabled={pending}>
          {pending ? 'Logging in…' : 'Log in'}
        </button>
      </form>
    </main>
  );
}
