import { useCallback, useState } from 'react';
import { Inspector } from './Inspector.tsx';
import { Login } from './Login.tsx';
import { clearSession, loadSession, saveSession, type InspectorSession } from './session.ts';

export function App() {
  const [session, setSession] = useState<InspectorSession | null>(() => loadSession());
  const [notice, setNotice] = useState<string | null>(null);
  // Stable, because the page's effects and loaders depend on it.
  const logOut = useCallback((reason?: string) => {
    clearSession();
    setNotice(reason ?? null);
    setSession(null);
  }, []);

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
  return <Inspector session={session} onLoggedOut={logOut} />;
}
