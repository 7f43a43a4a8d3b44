import { createHmac, randomBytes } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';

const ISSUER = 'lab-orchestrator';
const AUDIENCE = 'lab-orchestrator-api';

export interface SessionClaims {
  userId: number;
  sessionId: string;
}

/**
 * Bearer tokens for API sessions: HS256 only, with issuer, audience and expiry. The key is derived
 * from SECRET_KEY for this purpose alone, so a VNC token key (which defaults to SECRET_KEY, as the
 * original's websocket proxy expects) can never sign a session.
 */
export class SessionTokens {
  private readonly key: Uint8Array;

  constructor(secretKey: string) {
    this.key = createHmac('sha256', secretKey).update('lab-orchestrator/session-token/v1').digest();
  }

  newSessionId(): string {
    return randomBytes(24).toString('base64url');
  }

  async sign(claims: SessionClaims, expiresAt: Date): Promise<string> {
    return new SignJWT({ sid: claims.sessionId })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(String(claims.userId))
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(this.key);
  }

  /** Returns the claims, or a reason why the token is not acceptable. */
  async verify(token: string): Promise<SessionClaims | { invalid: string }> {
    try {
      const { payload } = await jwtVerify(token, this.key, { algorithms: ['HS256'], issuer: ISSUER, audience: AUDIENCE });
      const userId = Number(payload.sub);
      if (!Number.isSafeInteger(userId) || typeof payload.sid !== 'string') return { invalid: 'malformed token' };
      return { userId, sessionId: payload.sid };
    } catch (err) {
      if (err instanceof joseErrors.JWTExpired) return { invalid: 'token expired' };
      return { invalid: 'invalid token' };
    }
  }
}
