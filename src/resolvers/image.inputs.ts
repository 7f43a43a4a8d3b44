import { Field, InputType, Int } from 'type-graphql';
import { LIMITS } from '../services/rules.js';
import { CpuCores, ImageUrl, Memory, Text } from './validators.js';

@InputType({ description: 'A new image.' })
export class CreateImageInput {
  @Field(() => String, { description: 'Unique, 1-32 characters.' })
  @Text('name', LIMITS.name)
  name!: string;

  @Field(() => String, { description: '1-128 characters.' })
  @Text('description', LIMITS.description)
  description!: string;

  @Field(() => String, { description: 'Image reference of a KubeVirt containerDisk, e.g. quay.io/containerdisks/fedora:40.' })
  @ImageUrl()
  url!: string;

  @Field(() => Int, { nullable: true, description: 'Default 3, as the original.' })
  @CpuCores()
  cpuCores?: number | null;

  @Field(() => String, { nullable: true, description: 'Default 3G, as the original.' })
  @Memory()
  memory?: string | null;
}

@InputType({ description: 'Changes to an image; omitted fields keep their value.' })
export class UpdateImageInput {
  @Field(() => String, { nullable: true, description: 'Unique, 1-32 characters.' })
  @Text('name', LIMITS.name, true)
  name?: string | null;

  @Field(() => String, { nullable: true, description: '1-128 characters.' })
  @Text('description', LIMITS.description, true)
  description?: string | null;

  @Field(() => String, { nullable: true, description: 'New image reference; running instances keep the old one.' })
  @ImageUrl(true)
  url?: string | null;

  @Field(() => Int, { nullable: true, description: '1-64.' })
  @CpuCores()
  cpuCores?: number | null;

  @Field(() => String, { nullable: true, description: 'A Kubernetes quantity such as 3G or 2Gi.' })
  @Memory()
  memory?: string | null;
}
