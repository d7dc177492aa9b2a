/**
 * Resume tokens: each connection gets one, and a client that reconnects within the resume window can
 * present it to take up its request or call where it left off. The token is signed (jose) rather than
 * stored, so it stays valid across a server restart. Whether the person is still within their window is
 * their connection actor's to say (see connections.ts): it knows their sockets and when the last one went.
 */
import { SignJWT, jwtVerify } from 'jose';

const AUDIENCE = 'resume';
const ISSUER = 'callchart';

/** Who answers whether a person, asking from one of their open sockets, is still within their window. */
export interface ResumeWindows {
  withinWindow(principalKey: string, at: number): boolean;
}

export class ResumeSessions {
  private readonly key: Uint8Array;

  constructor(
    secret: string,
    private readonly windows: ResumeWindows,
    private readonly now: () => number = Date.now,
  ) {
    this.key = new TextEncoder().encode(secret);
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
    return this.windows.withinWindow(principalKey, this.now());
  }
}
