import { Entity, Index, ManyToOne, PrimaryKey, Property, Unique, type Ref } from '@mikro-orm/core';
import { Field, ID, Int, ObjectType } from 'type-graphql';
import { Image } from './image.entity.js';

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

@ObjectType({ description: 'A VM slot of a lab: one VM started from an image, reachable under its name.' })
@Entity({ tableName: 'lab_vms' })
@Unique({ properties: ['lab', 'name'] })
export class LabVm {
  @Field(() => ID, { description: 'Opaque identifier (a decimal number).' })
  @PrimaryKey({ type: 'integer', autoincrement: true })
  id!: number;

  @Field(() => String, {
    description: "DNS subdomain (RFC 1123), unique within the lab; becomes the VirtualMachineInstance's name.",
  })
  @Property({ type: 'string', length: 63 })
  name!: string;

  @Index()
  @ManyToOne(() => Lab, { ref: true, deleteRule: 'cascade', fieldName: 'lab_id' })
  lab!: Ref<Lab>;

  @Index()
  @ManyToOne(() => Image, { ref: true, deleteRule: 'restrict', fieldName: 'image_id' })
  image!: Ref<Image>;
}

@ObjectType({ description: 'A page of instructions shown with a lab.' })
@Entity({ tableName: 'instruction_pages' })
export class InstructionPage {
  @Field(() => ID, { description: 'Opaque identifier (a decimal number).' })
  @PrimaryKey({ type: 'integer', autoincrement: true })
  id!: number;

  @Field(() => String, { description: '1-128 characters.' })
  @Property({ type: 'string', length: 128 })
  title!: string;

  @Field(() => String, { nullable: true, description: 'Free text (Markdown or HTML, as the front end renders it).' })
  @Property({ type: 'text', nullable: true })
  content?: string | null;

  @Field(() => Int, { description: 'Order of the page within its lab, ascending.' })
  @Property({ type: 'integer', default: 0 })
  position: number = 0;

  @Index()
  @ManyToOne(() => Lab, { ref: true, deleteRule: 'cascade', fieldName: 'lab_id' })
  lab!: Ref<Lab>;
}
