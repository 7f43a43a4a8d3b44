import { type Ref } from '@mikro-orm/core';
import { Entity, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { Field, ID, Int, ObjectType } from 'type-graphql';
import { Lab } from './lab.entity.js';

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
