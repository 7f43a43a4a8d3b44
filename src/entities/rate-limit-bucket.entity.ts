import { Entity, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';

/** A fixed-window counter shared by every replica through the database. */
@Entity({ tableName: 'rate_limits' })
export class RateLimitBucket {
  @PrimaryKey({ type: 'string', length: 255 })
  key!: string;

  @Property({ type: 'integer' })
  count!: number;

  @Property({ type: 'datetime', fieldName: 'reset_at' })
  resetAt!: Date;
}
