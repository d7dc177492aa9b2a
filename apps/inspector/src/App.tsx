import { useCallback, useState } from 'react';
import { Login, type AgentSession } from '@callchart/ui';
import { loginWords, sessions } from './account.ts';
import { Inspector } from './Inspector.tsx';

export function App() {
  const [session, setSession] = useState<AgentSession | null>(() => sessions.load());
  const [notice, setNotice] = useState<string | null>(null);
  // Stable, because the page's effects and loaders depend on it.
  const logOut = useCallback((reason?: string) => {
    sessions.clear();
    setNotice(reason ?? null);
    setSession(null);
  }, []);

  if (session === null) {
    return (
      <Login
        words={loginWords}
        notice={notice}
        logIn={sessions.logIn}
        onLoggedIn={(next) => {
          sessions.save(next);
          setNotice(null);
          setSession(next);
        }}
      />
    );
  }
  return <Inspector session={session} onLoggedOut={logOut} />;
}
