import { Length, Matches, ValidateNested } from 'class-validator';
import { Field, ID, InputType, Int } from 'type-graphql';
import { DNS_LABEL, DNS_SUBDOMAIN, LIMITS } from '../services/rules.js';
import { Lifetime, MaxInstances, MaxLifetime, Text } from './validators.js';

@InputType({ description: 'A VM slot: its name within the lab and the image it starts from.' })
export class LabVmInput {
  @Field(() => String, { description: 'A DNS subdomain of at most 63 characters, unique within the lab.' })
  @Length(1, LIMITS.vmName, { message: `name must be 1-${LIMITS.vmName} characters` })
  @Matches(DNS_SUBDOMAIN, {
    message: 'name must be a DNS subdomain: lower-case letters, digits, "-" and ".", starting and ending alphanumeric',
  })
  name!: string;

  @Field(() => ID, { description: 'The image the VM starts from.' })
  imageId!: string;
}

@InputType({ description: 'A new lab with its VMs.' })
export class CreateLabInput {
  @Field(() => String, { description: 'Unique, 1-32 characters.' })
  @Text('name', LIMITS.name)
  name!: string;

  @Field(() => String, { description: 'A DNS label that starts with a letter, at most 32 characters; cannot change later.' })
  @Length(1, LIMITS.namespacePrefix, { message: `namespacePrefix must be at most ${LIMITS.namespacePrefix} characters` })
  @Matches(DNS_LABEL, {
    message: 'namespacePrefix must be a DNS label: lower-case letters, digits and "-", starting with a letter and not ending with "-"',
  })
  namespacePrefix!: string;

  @Field(() => String, { description: '1-128 characters.' })
  @Text('description', LIMITS.description)
  description!: string;

  @Field(() => Int, { nullable: true, description: 'Minutes an instance may live before it is stopped automatically (1-525600); null: no limit.' })
  @Lifetime()
  instanceLifetimeMinutes?: number | null;

  @Field(() => Int, { nullable: true, description: 'Most instances of the lab at once (0: no limit); null: MAX_INSTANCES_PER_LAB.' })
  @MaxInstances()
  maxInstances?: number | null;

  @Field(() => Int, {
    nullable: true,
    description: 'How long an instance may live in all, extensions included (1-525600); null: instanceLifetimeMinutes (no extension).',
  })
  @MaxLifetime()
  maxInstanceLifetimeMinutes?: number | null;

  @Field(() => [LabVmInput], { defaultValue: [], description: 'The VM slots, in order; the first one opens in VNC.' })
  @ValidateNested({ each: true })
  vms!: LabVmInput[];
}

@InputType({ description: 'Changes to a lab; omitted fields keep their value. The namespace prefix cannot change.' })
export class UpdateLabInput {
  @Field(() => String, { nullable: true, description: 'Unique, 1-32 characters.' })
  @Text('name', LIMITS.name, true)
  name?: string | null;

  @Field(() => String, { nullable: true, description: '1-128 characters.' })
  @Text('description', LIMITS.description, true)
  description?: string | null;

  @Field(() => Int, { nullable: true, description: 'Set null explicitly to remove the limit.' })
  @Lifetime()
  instanceLifetimeMinutes?: number | null;

  @Field(() => Int, { nullable: true, description: 'Most instances of the lab at once (0: no limit); set null explicitly for MAX_INSTANCES_PER_LAB.' })
  @MaxInstances()
  maxInstances?: number | null;

  @Field(() => Int, { nullable: true, description: 'Maximum lifetime with extensions; set null explicitly for no extension.' })
  @MaxLifetime()
  maxInstanceLifetimeMinutes?: number | null;
}
