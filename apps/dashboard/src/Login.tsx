import { useId, useState, type FormEvent } from 'react';
import type { AgentPlainKey } from '@callchart/machines/locales';
import { useLocale } from './locale.ts';
import { logIn, LoginError, type AgentSession } from './session.ts';

export function Login({ notice, onLoggedIn }: { notice: AgentPlainKey | null; onLoggedIn: (session: AgentSession) => void }) {
  const locale = useLocale();
  const [error, setError] = useState<AgentPlainKey | null>(null);
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
      setError(cause instanceof LoginError ? cause.text : 'agent.login.failed');
      setPending(false);
    }
  };

  return (
    <main className="login-page">
      <form className="login-card" onSubmit={submit} aria-describedby={error ? errorId : undefined} noValidate={false}>
        <div className="brand">
          <span className="brand-mark" aria-hidden="true" />
          <span>{locale.t('agent.brand')}</span>
        </div>
        <h1>{locale.t('agent.product')}</h1>
        <p className="subtle">{locale.t('agent.login.intro')}</p>
        {notice && !error && <p className="notice">{locale.t(notice)}</p>}
        <div className="field">
          <label htmlFor={emailId}>{locale.t('agent.login.email')}</label>
          <input id={emailId} name="email" type="email" autoComplete="username" required autoFocus />
        </div>
        <div className="field">
          <label htmlFor={passwordId}>{locale.t('agent.login.password')}</label>
          <input id={passwordId} name="password" type="password" autoComplete="current-password" required />
        </div>
        <div role="alert" id={errorId} className="form-error">
          {error && locale.t(error)}
        </div>
        <button type="submit" className="button primary wide" disabled={pending}>
          {locale.t(pending ? 'agent.login.pending' : 'agent.login.submit')}
        </button>
      </form>
    </main>
  );
}
