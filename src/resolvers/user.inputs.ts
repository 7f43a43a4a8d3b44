import { IsEmail, IsOptional, Length, Matches, MaxLength } from 'class-validator';
import { Field, InputType, registerEnumType } from 'type-graphql';
import { OrderDirection, UserOrderField } from '../services/user.service.js';
import { NOT_BLANK } from '../services/rules.js';

/** The original's column sizes. */
const MAX = { email: 254, name: 150, search: 254 } as const;

const MSG = {
  email: 'email must be an e-mail address',
  emailLength: `email must be at most ${MAX.email} characters`,
  firstName: `firstName must be 1-${MAX.name} characters and not blank`,
  name: (field: string) => `${field} must be at most ${MAX.name} characters`,
  search: `search must be at most ${MAX.search} characters`,
};

registerEnumType(OrderDirection, {
  name: 'OrderDirection',
  description: 'Sort order.',
  valuesConfig: { ASC: { description: 'Smallest first.' }, DESC: { description: 'Largest first.' } },
});

registerEnumType(UserOrderField, {
  name: 'UserOrderField',
  description: 'What users can be sorted by; ties are broken by id.',
  valuesConfig: {
    ID: { description: 'Creation order.' },
    EMAIL: { description: 'E-mail address.' },
    FIRST_NAME: { description: 'First name.' },
    LAST_NAME: { description: 'Last name.' },
    DATE_JOINED: { description: 'When the account was created.' },
  },
});

@InputType({ description: 'A new account. Password errors name the field `password`.' })
export class RegisterInput {
  @Field(() => String, { description: 'Becomes the login identifier; stored in lower case.' })
  @MaxLength(MAX.email, { message: MSG.emailLength })
  @IsEmail({}, { message: MSG.email })
  email!: string;

  @Field(() => String, {
    description: 'At least 8 characters, not entirely numeric, not a common password, not similar to the e-mail address or names.',
  })
  password!: string;

  @Field(() => String, { description: 'Required, 1-150 characters.' })
  @Length(1, MAX.name, { message: MSG.firstName })
  @Matches(NOT_BLANK, { message: MSG.firstName })
  firstName!: string;

  @Field(() => String, { defaultValue: '', description: 'At most 150 characters; may be empty.' })
  @MaxLength(MAX.name, { message: MSG.name('lastName') })
  lastName!: string;

  @Field(() => String, { defaultValue: '', description: 'Shown instead of the full name when set; at most 150 characters.' })
  @MaxLength(MAX.name, { message: MSG.name('displayName') })
  displayName!: string;
}

@InputType({ description: "Changes to the caller's names; omitted fields keep their value. The e-mail address cannot change." })
export class UpdateMeInput {
  @Field(() => String, { nullable: true, description: 'Not blank, at most 150 characters.' })
  @IsOptional()
  @Length(1, MAX.name, { message: MSG.firstName })
  @Matches(NOT_BLANK, { message: MSG.firstName })
  firstName?: string | null;

  @Field(() => String, { nullable: true, description: 'At most 150 characters; may be empty.' })
  @IsOptional()
  @MaxLength(MAX.name, { message: MSG.name('lastName') })
  lastName?: string | null;

  @Field(() => String, { nullable: true, description: 'At most 150 characters; empty to show the full name.' })
  @IsOptional()
  @MaxLength(MAX.name, { message: MSG.name('displayName') })
  displayName?: string | null;
}

@InputType({ description: "An admin's changes to a user's rights; omitted fields keep their value." })
export class UpdateUserInput {
  @Field(() => Boolean, { nullable: true, description: 'May start and stop labs.' })
  isTrusted?: boolean | null;

  @Field(() => Boolean, { nullable: true, description: 'Admin right. The last active admin cannot give it up (CONFLICT).' })
  isAdmin?: boolean | null;

  @Field(() => Boolean, { nullable: true, description: 'False deactivates the account and revokes all its sessions at once.' })
  isActive?: boolean | null;
}

@InputType({ description: 'Narrows a user list; every given condition must hold.' })
export class UserFilter {
  @Field(() => String, { nullable: true, description: 'Case-insensitive substring of email, first name or last name.' })
  @IsOptional()
  @MaxLength(MAX.search, { message: MSG.search })
  search?: string | null;

  @Field(() => Boolean, { nullable: true, description: 'Only admins (true) or only non-admins (false).' })
  isAdmin?: boolean | null;

  @Field(() => Boolean, { nullable: true, description: 'Only trusted (true) or only untrusted (false) users.' })
  isTrusted?: boolean | null;

  @Field(() => Boolean, { nullable: true, description: 'Only active (true) or only deactivated (false) users.' })
  isActive?: boolean | null;
}

@InputType({ description: 'Sort order of a user list.' })
export class UserOrder {
  @Field(() => UserOrderField, { description: 'What to sort by.' })
  field!: UserOrderField;

  @Field(() => OrderDirection, { defaultValue: OrderDirection.ASC, description: 'ASC unless given.' })
  direction!: OrderDirection;
}
