import { type Ref } from '@mikro-orm/core';
import { Entity, Index, ManyToOne, PrimaryKey, Property, Unique } from '@mikro-orm/decorators/legacy';
import { Field, ID, ObjectType } from 'type-graphql';
import { Image } from './image.entity.js';
import { Lab } from './lab.entity.js';

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
