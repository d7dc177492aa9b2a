/**
 * Errors the client reports through its `onError` option. None of them stops the client: the machines
 * own every recovery decision, so an adapter only tells what went wrong. `message` is one sentence a
 * user may see; `details` is for the log.
 */
import type { ProtocolError } from '@callchart/machines';

export type ClientErrorCode =
  /** The server sent a payload the protocol does not allow; it was dropped. */
  | 'invalid-server-event'
  /** The server answered a message with `ok: false`. */
  | 'request-rejected'
  /** The camera or microphone could not be opened; the call goes on without local media. */
  | 'media-unavailable'
  /** A step of the offer/answer or candidate exchange failed on the RTCPeerConnection. */
  | 'negotiation-failed';

export interface ClientErrorDetails {
  /** The wire event or peer-connection step concerned. */
  event?: string;
  protocolError?: ProtocolError;
  cause?: unknown;
}

export class ClientError extends Error {
  override readonly name = 'ClientError';

  constructor(
    readonly code: ClientErrorCode,
    message: string,
    readonly details: ClientErrorDetails = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
  }
}

export type ErrorListener = (error: ClientError) => void;
