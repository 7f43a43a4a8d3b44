import { Entity, PrimaryKey, Property } from '@mikro-orm/core';
import { Field, ID, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'A set of VMs that students start together, with instruction pages.' })
@Entity({ tableName: 'labs' })
export class Lab {
  @Field(() => ID, { description: 'Opaque identifier (a decimal number).' })
  @PrimaryKey({ type: 'integer', autoincrement: true })
  id!: number;

  @Field(() => String, { description: 'Unique, 1-32 characters.' })
  @Property({ type: 'string', length: 32, unique: true })
  name!: string;

  @Field(() => String, {
    description: 'Unique DNS label (starts with a letter, at most 32 characters); prefixes each instance\'s namespace.',
  })
  @Property({ type: 'string', length: 32, unique: true, fieldName: 'namespace_prefix' })
  namespacePrefix!: string;

  @Field(() => String, { description: '1-128 characters.' })
  @Property({ type: 'string', length: 128 })
  description!: string;

  @Field(() => Int, {
    nullable: true,
    description: 'How long an instance of this lab may live before it is stopped automatically; null: no limit.',
  })
  @Property({ type: 'integer', nullable: true, fieldName: 'instance_lifetime_minutes' })
  instanceLifetimeMinutes?: number | null;

  @Property({ type: 'datetime', fieldName: 'created_at' })
  createdAt: Date = new Date();
}
