import type { Feed } from './feed.ts';
import { RequestView } from './RequestView.tsx';
import { useCallHistory } from './useCallHistory.ts';
import type { CallRecord } from '@callchart/machines';

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function CallHistoryView({
  feed,
  callId,
  title,
  record,
  connected,
}: {
  feed: Feed;
  callId: string;
  title: string;
  /** The call as the finished list has it; null when it was opened from a request that just ended. */
  record: CallRecord | null;
  connected: boolean;
}) {
  const { call, entries, loading, error } = useCallHistory(feed, callId, connected);
  return (
    <RequestView
      heading={
        <>
          <h1>
            {title} <span className="subtle">finished call</span>
          </h1>
          <p className="subtle">
            <code>{callId}</code>
            {record && <> · pool {record.pool} · started {timeFormat.format(record.startedAt)}</>}
            {call && <> · ended: {call.endReason ?? call.state}</>}
          </p>
        </>
      }
      notice={
        error ? (
          <p className="form-error" role="alert">
            {error}
          </p>
        ) : loading ? (
          <p className="subtle">Loading the stored transitions…</p>
        ) : null
      }
      entries={entries}
      live={false}
      contextStored={false}
    />
  );
}
