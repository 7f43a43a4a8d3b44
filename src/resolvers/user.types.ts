import { Field, ObjectType } from 'type-graphql';
import { User } from '../entities/index.js';

@ObjectType({ description: 'The result of signing in or registering.' })
export class AuthPayload {
  @Field(() => String, { nullable: true, description: 'Bearer token; null when e-mail verification is mandatory and still pending.' })
  token?: string | null;

  @Field(() => Date, { nullable: true })
  expiresAt?: Date | null;

  @Field(() => User)
  user!: User;

  @Field(() => Boolean, { description: 'True when a verification e-mail was sent.' })
  verificationEmailSent!: boolean;
}
