import { Field, ID, InputType, Int } from 'type-graphql';
import { LIMITS } from '../services/rules.js';
import { PageContent, Position, Text } from './validators.js';

@InputType({ description: 'A new instruction page.' })
export class CreateInstructionPageInput {
  @Field(() => ID, { description: 'The lab the page belongs to.' })
  labId!: string;

  @Field(() => String, { description: '1-128 characters.' })
  @Text('title', LIMITS.pageTitle)
  title!: string;

  @Field(() => String, { nullable: true, description: 'Free text; Markdown or HTML, as the front end renders it.' })
  @PageContent()
  content?: string | null;

  @Field(() => Int, { nullable: true, description: 'Default: after the last page.' })
  @Position()
  position?: number | null;
}

@InputType({ description: 'Changes to an instruction page; omitted fields keep their value.' })
export class UpdateInstructionPageInput {
  @Field(() => String, { nullable: true, description: '1-128 characters.' })
  @Text('title', LIMITS.pageTitle, true)
  title?: string | null;

  @Field(() => String, { nullable: true, description: 'Free text; null removes it.' })
  @PageContent()
  content?: string | null;

  @Field(() => Int, { nullable: true, description: 'Order within the lab, ascending (0-10000).' })
  @Position()
  position?: number | null;
}
