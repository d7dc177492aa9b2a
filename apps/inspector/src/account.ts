/**
 * The inspector's account: an agent with the `inspector` role. The inspector speaks English only, so its
 * login's words are here rather than in a catalogue.
 */
import { sessionStore, type LoginError, type LoginWords } from '@callchart/ui';

const INSPECTOR_ROLE = 'inspector';

export const sessions = sessionStore({ storageKey: 'callchart.inspectorSession', requiredRole: INSPECTOR_ROLE });

export function missingRoleMessage(name: string): string {
  return `${name}'s account lacks the inspector role, so it cannot open the inspector. Log in with an inspector account.`;
}

const FAILED = 'Logging in failed. Please try again.';

function failureMessage(error: LoginError): string {
  switch (error.failure) {
    case 'unreachable':
      return 'The server could not be reached. Check your connection and try again.';
    case 'missingRole':
      return error.detail.session ? missingRoleMessage(error.detail.session.agent.name) : FAILED;
    default:
      // The server's refusal is one sentence meant for the person at the form.
      return error.detail.serverMessage ?? FAILED;
  }
}

export const loginWords: LoginWords = {
  brand: 'callchart',
  title: 'Inspector',
  intro: 'Watch the statecharts of live calls and replay finished ones. Needs an account with the inspector role.',
  email: 'Email',
  password: 'Password',
  submit: 'Log in',
  pending: 'Logging in…',
  failure: failureMessage,
};
