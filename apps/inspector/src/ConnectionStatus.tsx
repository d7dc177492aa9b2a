import type { FeedStatus } from './feed.ts';

function describe(status: FeedStatus): string {
  switch (status.kind) {
    case 'connecting':
      return 'Connecting…';
    case 'connected':
      return 'Connected';
    case 'reconnecting':
      return status.attempt > 0 ? `Connection lost, reconnecting (attempt ${status.attempt})…` : 'Connection lost, reconnecting…';
    case 'refused':
      return status.reason === 'forbidden' ? 'The server refused this account: it lacks the inspector role.' : 'The server refused the session; log in again.';
    case 'closed':
      return 'Disconnected';
  }
}

export function ConnectionStatus({ status }: { status: FeedStatus }) {
  return (
    <p className={`connection ${status.kind}`} role="status">
      <span className="dot" aria-hidden="true" />
      {describe(status)}
    </p>
  );
}
