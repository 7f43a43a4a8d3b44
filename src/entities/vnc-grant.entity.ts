import { Entity, Index, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

/**
 * Which login session issued a VNC token. The token's claims are fixed by the original websocket
 * proxy, so the issuing session is kept here, keyed by the token's SHA-256: a logout ends the consoles
 * opened with the tokens of that session, and a renewal through it extends them.
 */
@Entity({ tableName: 'vnc_grants' })
export class VncGrant {
  @PrimaryKey({ type: 'string', length: 64, fieldName: 'token_hash' })
  tokenHash!: string;

  @Index()
  @Property({ type: 'string', length: 64, fieldName: 'session_id' })
  sessionId!: string;

  @Property({ type: 'integer', fieldName: 'user_id' })
  userId!: number;

  @Property({ type: 'integer', fieldName: 'instance_id' })
  instanceId!: number;

  @Index()
  @Property({ type: 'datetime', fieldName: 'expires_at' })
  expiresAt!: Date;
}
