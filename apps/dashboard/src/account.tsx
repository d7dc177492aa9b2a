/** The agent's account on this dashboard: where its session is kept and what the login form says. */
import type { AgentPlainKey, AgentTranslator } from '@callchart/machines/locales';
import { sessionStore, type LoginFailure, type LoginWords } from '@callchart/ui';

export const sessions = sessionStore({ storageKey: 'callchart.agentSession' });

const failureKeys: Record<LoginFailure, AgentPlainKey> = {
  unreachable: 'agent.login.unreachable',
  incorrect: 'agent.login.incorrect',
  // The server's other refusals are English sentences; the agent gets one of their own language.
  refused: 'agent.login.failed',
  missingRole: 'agent.login.failed',
  failed: 'agent.login.failed',
};

export function loginWords(locale: AgentTranslator): LoginWords {
  return {
    brand: (
      <>
        <span className="brand-mark" aria-hidden="true" />
        <span>{locale.t('agent.brand')}</span>
      </>
    ),
    title: locale.t('agent.product'),
    intro: locale.t('agent.login.intro'),
    email: locale.t('agent.login.email'),
    password: locale.t('agent.login.password'),
    submit: locale.t('agent.login.submit'),
    pending: locale.t('agent.login.pending'),
    failure: (error) => locale.t(failureKeys[error.failure]),
  };
}
