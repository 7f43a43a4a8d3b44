import { type Ref } from '@mikro-orm/core';
import { Entity, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { User } from './user.entity.js';

/** One login. Its id is the `sid` claim of the bearer token; revoking the row revokes the token at once. */
@Entity({ tableName: 'sessions' })
export class Session {
  @PrimaryKey({ type: 'string', length: 64 })
  id!: string;

  @Index()
  @ManyToOne(() => User, { ref: true, deleteRule: 'cascade', fieldName: 'user_id' })
  user!: Ref<User>;

  @Property({ type: 'datetime', fieldName: 'created_at' })
  createdAt: Date = new Date();

  @Property({ type: 'datetime', fieldName: 'expires_at' })
  expiresAt!: Date;

  @Property({ type: 'datetime', nullable: true, fieldName: 'revoked_at' })
  revokedAt?: Date | null;
}
