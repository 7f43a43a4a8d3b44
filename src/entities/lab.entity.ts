import { Entity, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { Field, ID, Int, ObjectType } from 'type-graphql';

@ObjectType({ description: 'A set of VMs that students start together, with instruction pages.' })
@Entity({ tableName: 'labs' })
export class Lab {
  @Field(() => ID, { description: 'Opaque identifier (a decimal number).' })
  @PrimaryKey({ type: 'integer', autoincrement: true })
  id!: number;

  @Field(() => String, { description: 'Unique, 1-32 characters.' })
  // Unique among the labs that are not deleted (a partial unique index, see the migrations).
  @Property({ type: 'string', length: 32 })
  name!: string;

  @Field(() => String, {
    description: 'Unique DNS label (starts with a letter, at most 32 characters); prefixes each instance\'s namespace.',
  })
  @Property({ type: 'string', length: 32, fieldName: 'namespace_prefix' })
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

  @Field(() => Int, {
    nullable: true,
    description: 'Most instances of this lab that may exist at once (not STOPPED); null: MAX_INSTANCES_PER_LAB, 0 there meaning no limit.',
  })
  @Property({ type: 'integer', nullable: true, fieldName: 'max_instances' })
  maxInstances?: number | null;

  @Field(() => Int, {
    nullable: true,
    description:
      'How long an instance may live in all, extensions (extendLabInstance) included; null: instanceLifetimeMinutes, so no extension.',
  })
  @Property({ type: 'integer', nullable: true, fieldName: 'max_instance_lifetime_minutes' })
  maxInstanceLifetimeMinutes?: number | null;

  @Property({ type: 'datetime', fieldName: 'created_at' })
  createdAt: Date = new Date();

  /** Set when the lab was deleted: it stays, hidden, for the instances started from it (history). */
  @Property({ type: 'datetime', nullable: true, fieldName: 'deleted_at' })
  deletedAt?: Date | null;
}
