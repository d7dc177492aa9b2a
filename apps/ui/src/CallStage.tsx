import { useSyncExternalStore, type ReactNode } from 'react';
import type { CallStreams } from '@callchart/client';
import { Video } from './Video.tsx';

export interface CallStageProps {
  /** The client whose call is shown. */
  streams: CallStreams;
  /** Names the other person's video for assistive technology. */
  remoteLabel: string;
  ownCameraLabel: string;
  /** Drawn over the videos. */
  children?: ReactNode;
}

/** A call's videos: the other person's, and this side's own camera over it. */
export function CallStage({ streams, remoteLabel, ownCameraLabel, children }: CallStageProps) {
  const localStream = useSyncExternalStore(streams.subscribeStreams, () => streams.localStream);
  const remoteStream = useSyncExternalStore(streams.subscribeStreams, () => streams.remoteStream);
  return (
    <div className="stage">
      <Video stream={remoteStream} role="remote" className="remote" label={remoteLabel} />
      <Video stream={localStream} role="local" className="local" label={ownCameraLabel} />
      {children}
    </div>
  );
}

/** The notice over a call's video while its connection is away, with a spinner beside it. */
export function CallOverlay({ text }: { text: string }) {
  return (
    <span className="overlay" data-role="overlay">
      <span className="spinner" aria-hidden="true" />
      {text}
    </span>
  );
}
