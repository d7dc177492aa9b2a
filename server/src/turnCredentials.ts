/**
 * Per-call TURN credentials with the TURN REST scheme (coturn's `use-auth-secret` and
 * `static-auth-secret`): the username is the expiry, in Unix seconds, and an id; the password is
 * base64(HMAC-SHA1(secret, username)). The TURN server checks both without asking us, so a credential
 * read from one call's page relays only until it expires, instead of forever as a static one would.
 */
import { createHmac } from 'node:crypto';
import type { IceServer } from '@callchart/machines/protocol';
import type { ServerConfig, TurnRestConfig } from './config.ts';

/** A TURN server entry whose credentials expire at `expiresAt` (ms); `id` names what they were minted for. */
export function mintTurnServer(turn: TurnRestConfig, id: string, expiresAt: number): IceServer {
  const username = `${String(Math.floor(expiresAt / 1_000))}:${id}`;
  const credential = createHmac('sha1', turn.secret).update(username).digest('base64');
  return { urls: turn.urls, username, credential };
}

/** The ICE servers one call's legs are given: the static ones, and with TURN_SECRET one minted for this call. */
export function iceServersForCall(ice: ServerConfig['ice'], callId: string, now: number): IceServer[] {
  if (ice.turn === null) return ice.servers;
  return [...ice.servers, mintTurnServer(ice.turn, callId, now + ice.turn.ttlSeconds * 1_000)];
}
