import { Entity, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { Field, ID, Int, ObjectType } from 'type-graphql';

export const DEFAULT_CPU_CORES = 3;
export const DEFAULT_MEMORY = '3G';

@ObjectType({ description: 'A container image that holds a VM disk (KubeVirt containerDisk).' })
@Entity({ tableName: 'images' })
export class Image {
  @Field(() => ID, { description: 'Opaque identifier (a decimal number).' })
  @PrimaryKey({ type: 'integer', autoincrement: true })
  id!: number;

  @Field(() => String, { description: 'Unique, 1-32 characters.' })
  @Property({ type: 'string', length: 32, unique: true })
  name!: string;

  @Field(() => String, { description: '1-128 characters.' })
  @Property({ type: 'string', length: 128 })
  description!: string;

  @Field(() => String, { description: 'Image reference, e.g. registry.example.org/vms/ubuntu:22.04 (1-256 characters).' })
  @Property({ type: 'string', length: 256 })
  url!: string;

  @Field(() => Int, { description: 'CPU cores of each VM started from this image.' })
  @Property({ type: 'integer', fieldName: 'cpu_cores', default: DEFAULT_CPU_CORES })
  cpuCores: number = DEFAULT_CPU_CORES;

  @Field(() => String, { description: 'Memory request of each VM, a Kubernetes quantity such as 3G or 2Gi.' })
  @Property({ type: 'string', length: 32, default: DEFAULT_MEMORY })
  memory: string = DEFAULT_MEMORY;

  @Property({ type: 'datetime', fieldName: 'created_at' })
  createdAt: Date = new Date();
}
