import { useState } from 'react';
import type { AgentPlainKey } from '@callchart/machines/locales';
import { Console } from './Console.tsx';
import { Login } from './Login.tsx';
import { clearSession, loadSession, saveSession, type AgentSession } from './session.ts';

export function App() {
  const [session, setSession] = useState<AgentSession | null>(() => loadSession());
  const [notice, setNotice] = useState<AgentPlainKey | null>(null);

  if (session === null) {
    return (
      <Login
        notice={notice}
        onLoggedIn={(next) => {
          saveSession(next);
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
        clearSession();
        setNotice(reason ?? null);
        setSession(null);
      }}
    />
  );
}
