import { IsInt, IsOptional, Length, Matches, Max, Min } from 'class-validator';
import { Field, InputType, Int } from 'type-graphql';
import { IMAGE_REFERENCE, LIMITS, MEMORY_QUANTITY, NOT_BLANK } from '../services/rules.js';

const MSG = {
  name: `name must be 1-${LIMITS.name} characters`,
  description: `description must be 1-${LIMITS.description} characters`,
  url: `url must be 1-${LIMITS.url} characters`,
  urlFormat: 'url must be an image reference such as registry.example.org/vms/ubuntu:22.04',
  cores: `cpuCores must be an integer from 1 to ${LIMITS.cpuCoresMax}`,
  memory: 'memory must be a Kubernetes quantity such as 3G or 2Gi',
  blank: (f: string) => `${f} must not be blank`,
};

@InputType({ description: 'A new image.' })
export class CreateImageInput {
  @Field(() => String)
  @Length(1, LIMITS.name, { message: MSG.name })
  @Matches(NOT_BLANK, { message: MSG.blank('name') })
  name!: string;

  @Field(() => String)
  @Length(1, LIMITS.description, { message: MSG.description })
  @Matches(NOT_BLANK, { message: MSG.blank('description') })
  description!: string;

  @Field(() => String)
  @Length(1, LIMITS.url, { message: MSG.url })
  @Matches(IMAGE_REFERENCE, { message: MSG.urlFormat })
  url!: string;

  @Field(() => Int, { nullable: true, description: 'Default 3, as the original.' })
  @IsOptional()
  @IsInt({ message: MSG.cores })
  @Min(1, { message: MSG.cores })
  @Max(LIMITS.cpuCoresMax, { message: MSG.cores })
  cpuCores?: number | null;

  @Field(() => String, { nullable: true, description: 'Default 3G, as the original.' })
  @IsOptional()
  @Matches(MEMORY_QUANTITY, { message: MSG.memory })
  memory?: string | null;
}

@InputType({ description: 'Changes to an image; omitted fields keep their value.' })
export class UpdateImageInput {
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, LIMITS.name, { message: MSG.name })
  @Matches(NOT_BLANK, { message: MSG.blank('name') })
  name?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, LIMITS.description, { message: MSG.description })
  @Matches(NOT_BLANK, { message: MSG.blank('description') })
  description?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, LIMITS.url, { message: MSG.url })
  @Matches(IMAGE_REFERENCE, { message: MSG.urlFormat })
  url?: string | null;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt({ message: MSG.cores })
  @Min(1, { message: MSG.cores })
  @Max(LIMITS.cpuCoresMax, { message: MSG.cores })
  cpuCores?: number | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Matches(MEMORY_QUANTITY, { message: MSG.memory })
  memory?: string | null;
}
