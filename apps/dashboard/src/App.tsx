import { useState } from 'react';
import type { AgentPlainKey } from '@callchart/machines/locales';
import { Login, type AgentSession } from '@callchart/ui';
import { loginWords, sessions } from './account.tsx';
import { Console } from './Console.tsx';
import { useLocale } from './locale.ts';

export function App() {
  const locale = useLocale();
  const [session, setSession] = useState<AgentSession | null>(() => sessions.load());
  const [notice, setNotice] = useState<AgentPlainKey | null>(null);

  if (session === null) {
    return (
      <Login
        words={loginWords(locale)}
        notice={notice && locale.t(notice)}
        logIn={sessions.logIn}
        onLoggedIn={(next) => {
          sessions.save(next);
          setNotice(null);
          setSession(next);
        }}
      />
    );
  }
  return (
    <Console
      session={session}
      onLoggedOut={(reason) => {
        sessions.clear();
        setNotice(reason ?? null);
        setSession(null);
      }}
    />
  );
}
