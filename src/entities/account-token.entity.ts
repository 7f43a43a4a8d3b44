import { type Ref } from '@mikro-orm/core';
import { Entity, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { User } from './user.entity.js';

export type AccountTokenPurpose = 'verify-email' | 'reset-password';

/** A single-use e-mail token; only its SHA-256 is stored. */
@Entity({ tableName: 'account_tokens' })
export class AccountToken {
  @PrimaryKey({ type: 'integer', autoincrement: true })
  id!: number;

  @Property({ type: 'string', length: 64, unique: true, fieldName: 'token_hash' })
  tokenHash!: string;

  @Property({ type: 'string', length: 32 })
  purpose!: AccountTokenPurpose;

  @Index()
  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade', fieldName: 'user_id' })
  user!: Ref<User>;

  @Property({ type: 'datetime', fieldName: 'created_at' })
  createdAt: Date = new Date();

  @Property({ type: 'datetime', fieldName: 'expires_at' })
  expiresAt!: Date;

  @Property({ type: 'datetime', nullable: true, fieldName: 'used_at' })
  usedAt?: Date | null;
}
