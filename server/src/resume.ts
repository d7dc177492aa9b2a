/**
 * Resume tokens: each connection gets one, and a client that reconnects within the resume window can
 * present it to take up its request or call where it left off. The token is signed (jose) rather than
 * stored, so it stays valid across a server restart; the window is tracked per person in memory, and after
 * a restart it runs from the moment the new process listens, since every socket was lost at once.
 */
import { SignJWT, jwtVerify } from 'jose';

const AUDIENCE = 'resume';
const ISSUER = 'callchart';

export class ResumeSessions {
  private readonly key: Uint8Array;
  private readonly sockets = new Map<string, number>();
  private readonly lastDisconnectAt = new Map<string, number>();
  /** When the process began taking connections: a session from before it counts its window from there. */
  private openedAt: number;

  constructor(
    secret: string,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {
    this.key = new TextEncoder().encode(secret);
    this.openedAt = now();
  }

  /** Call once the server listens: until then nobody could have come back, so no window has run. */
  open(): void {
    this.openedAt = this.now();
  }

  async issue(principalKey: string): Promise<string> {
    const issuedAt = Math.floor(this.now() / 1000);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject(principalKey)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + 24 * 3600)
      .sign(this.key);
  }

  /** True when the token is ours, names this person, and they are still within the window. */
  async canResume(token: string, principalKey: string): Promise<boolean> {
    try {
      const { payload } = await jwtVerify(token, this.key, {
        issuer: ISSUER,
        audience: AUDIENCE,
        currentDate: new Date(this.now()),
      });
      if (payload.sub !== principalKey) return false;
    } catch {
      return false;
    }
    // The asking socket is already counted as connected: only another live socket of the person (a second
    // tab) keeps the session open regardless of the window.
    if ((this.sockets.get(principalKey) ?? 0) > 1) return true;
    const since = this.lastDisconnectAt.get(principalKey) ?? this.openedAt;
    return this.now() - since <= this.windowMs;
  }

  connected(principalKey: string): void {
    this.sockets.set(principalKey, (this.sockets.get(principalKey) ?? 0) + 1);
  }

  /** Returns true when that was the person's last socket. */
  disconnected(principalKey: string): boolean {
    const left = Math.max(0, (this.sockets.get(principalKey) ?? 1) - 1);
    if (left > 0) {
      this.sockets.set(principalKey, left);
      return false;
    }
    this.sockets.delete(principalKey);
    this.lastDisconnectAt.set(principalKey, this.now());
    return true;
  }

  isConnected(principalKey: string): boolean {
    return (this.sockets.get(principalKey) ?? 0) > 0;
  }
}
