import { Field, ObjectType } from 'type-graphql';
import { User } from '../entities/index.js';
import { connectionTypes } from '../graphql/connection.js';

@ObjectType({ description: 'The result of signing in or registering.' })
export class AuthPayload {
  @Field(() => String, { nullable: true, description: 'Bearer token; null when e-mail verification is mandatory and still pending.' })
  token?: string | null;

  @Field(() => Date, { nullable: true, description: 'When the token stops working (SESSION_TTL_SECONDS after sign-in); null without a token.' })
  expiresAt?: Date | null;

  @Field(() => User, { description: 'The account signed in or registered.' })
  user!: User;

  @Field(() => Boolean, { description: 'True when a verification e-mail was sent.' })
  verificationEmailSent!: boolean;
}

export const UserConnection = connectionTypes('User', User);
