import { Field, InputType, Int } from 'type-graphql';
import { LIMITS } from '../services/rules.js';
import { CpuCores, ImageUrl, Memory, Text } from './validators.js';

@InputType({ description: 'A new image.' })
export class CreateImageInput {
  @Field(() => String)
  @Text('name', LIMITS.name)
  name!: string;

  @Field(() => String)
  @Text('description', LIMITS.description)
  description!: string;

  @Field(() => String)
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
  @Field(() => String, { nullable: true })
  @Text('name', LIMITS.name, true)
  name?: string | null;

  @Field(() => String, { nullable: true })
  @Text('description', LIMITS.description, true)
  description?: string | null;

  @Field(() => String, { nullable: true })
  @ImageUrl(true)
  url?: string | null;

  @Field(() => Int, { nullable: true })
  @CpuCores()
  cpuCores?: number | null;

  @Field(() => String, { nullable: true })
  @Memory()
  memory?: string | null;
}
