import { IsInt, IsOptional, Length, Matches, Max, Min, ValidateNested } from 'class-validator';
import { Field, ID, InputType, Int } from 'type-graphql';
import { DNS_LABEL, DNS_SUBDOMAIN, LIMITS, NOT_BLANK } from '../services/rules.js';

const MSG = {
  name: `name must be 1-${LIMITS.name} characters`,
  description: `description must be 1-${LIMITS.description} characters`,
  prefix: `namespacePrefix must be at most ${LIMITS.namespacePrefix} characters`,
  prefixFormat: 'namespacePrefix must be a DNS label: lower-case letters, digits and "-", starting with a letter and not ending with "-"',
  vmName: `name must be 1-${LIMITS.vmName} characters`,
  vmNameFormat: 'name must be a DNS subdomain: lower-case letters, digits, "-" and ".", starting and ending alphanumeric',
  lifetime: `instanceLifetimeMinutes must be from 1 to ${LIMITS.lifetimeMinutesMax}, or null for no limit`,
  title: `title must be 1-${LIMITS.pageTitle} characters`,
  content: `content must be at most ${LIMITS.pageContent} characters`,
  position: 'position must be an integer from 0 to 10000',
  blank: (f: string) => `${f} must not be blank`,
};

@InputType({ description: 'A VM slot: its name within the lab and the image it starts from.' })
export class LabVmInput {
  @Field(() => String)
  @Length(1, LIMITS.vmName, { message: MSG.vmName })
  @Matches(DNS_SUBDOMAIN, { message: MSG.vmNameFormat })
  name!: string;

  @Field(() => ID)
  imageId!: string;
}

@InputType({ description: 'A new lab with its VMs.' })
export class CreateLabInput {
  @Field(() => String)
  @Length(1, LIMITS.name, { message: MSG.name })
  @Matches(NOT_BLANK, { message: MSG.blank('name') })
  name!: string;

  @Field(() => String)
  @Length(1, LIMITS.namespacePrefix, { message: MSG.prefix })
  @Matches(DNS_LABEL, { message: MSG.prefixFormat })
  namespacePrefix!: string;

  @Field(() => String)
  @Length(1, LIMITS.description, { message: MSG.description })
  @Matches(NOT_BLANK, { message: MSG.blank('description') })
  description!: string;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt({ message: MSG.lifetime })
  @Min(1, { message: MSG.lifetime })
  @Max(LIMITS.lifetimeMinutesMax, { message: MSG.lifetime })
  instanceLifetimeMinutes?: number | null;

  @Field(() => [LabVmInput], { defaultValue: [] })
  @ValidateNested({ each: true })
  vms!: LabVmInput[];
}

@InputType({ description: 'Changes to a lab; omitted fields keep their value. The namespace prefix cannot change.' })
export class UpdateLabInput {
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

  @Field(() => Int, { nullable: true, description: 'Set null explicitly to remove the limit.' })
  @IsOptional()
  @IsInt({ message: MSG.lifetime })
  @Min(1, { message: MSG.lifetime })
  @Max(LIMITS.lifetimeMinutesMax, { message: MSG.lifetime })
  instanceLifetimeMinutes?: number | null;
}

@InputType({ description: 'A new instruction page.' })
export class CreateInstructionPageInput {
  @Field(() => ID)
  labId!: string;

  @Field(() => String)
  @Length(1, LIMITS.pageTitle, { message: MSG.title })
  @Matches(NOT_BLANK, { message: MSG.blank('title') })
  title!: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(0, LIMITS.pageContent, { message: MSG.content })
  content?: string | null;

  @Field(() => Int, { nullable: true, description: 'Default: after the last page.' })
  @IsOptional()
  @IsInt({ message: MSG.position })
  @Min(0, { message: MSG.position })
  @Max(10_000, { message: MSG.position })
  position?: number | null;
}

@InputType({ description: 'Changes to an instruction page; omitted fields keep their value.' })
export class UpdateInstructionPageInput {
  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(1, LIMITS.pageTitle, { message: MSG.title })
  @Matches(NOT_BLANK, { message: MSG.blank('title') })
  title?: string | null;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(0, LIMITS.pageContent, { message: MSG.content })
  content?: string | null;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt({ message: MSG.position })
  @Min(0, { message: MSG.position })
  @Max(10_000, { message: MSG.position })
  position?: number | null;
}
