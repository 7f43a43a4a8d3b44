import { Entity, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { Field, ID, ObjectType } from 'type-graphql';

@ObjectType({ description: 'A person with an account.' })
@Entity({ tableName: 'users' })
export class User {
  @Field(() => ID, { description: 'Stable identifier.' })
  @PrimaryKey({ type: 'integer', autoincrement: true })
  id!: number;

  @Field(() => String, { description: 'Login identifier; unique, stored in lower case.' })
  @Property({ type: 'string', length: 254, unique: true })
  email!: string;

  @Property({ type: 'string', length: 255, hidden: true, lazy: true, fieldName: 'password_hash' })
  passwordHash!: string;

  @Field(() => String, { description: 'Required; never blank.' })
  @Property({ type: 'string', length: 150, fieldName: 'first_name' })
  firstName!: string;

  @Field(() => String, { description: 'May be empty.' })
  @Property({ type: 'string', length: 150, fieldName: 'last_name', default: '' })
  lastName: string = '';

  @Field(() => String, { description: 'As entered; may be empty.' })
  @Property({ type: 'string', length: 150, fieldName: 'display_name', default: '' })
  displayName: string = '';

  @Field(() => Boolean, { description: 'May start and stop labs.' })
  @Property({ type: 'boolean', fieldName: 'is_trusted', default: false })
  isTrusted: boolean = false;

  @Field(() => Boolean, { description: 'Staff: manages the catalogue and sees every user and instance.' })
  @Property({ type: 'boolean', fieldName: 'is_admin', default: false })
  isAdmin: boolean = false;

  @Field(() => Boolean, { description: 'False: deactivated by an admin; cannot sign in, and every token is revoked.' })
  @Property({ type: 'boolean', fieldName: 'is_active', default: true })
  isActive: boolean = true;

  @Field(() => Boolean, { description: 'The owner followed a verification or password reset link sent to the address.' })
  @Property({ type: 'boolean', fieldName: 'email_verified', default: false })
  emailVerified: boolean = false;

  @Field(() => Date, { description: 'When the account was created.' })
  @Property({ type: 'datetime', fieldName: 'date_joined' })
  dateJoined: Date = new Date();

  @Property({ type: 'datetime', fieldName: 'last_login', nullable: true })
  lastLogin?: Date | null;

  @Field(() => String, { description: 'firstName and lastName joined.' })
  get fullName(): string {
    return `${this.firstName} ${this.lastName}`.trim();
  }

  @Field(() => String, { description: 'displayName when set, otherwise fullName.' })
  get realDisplayName(): string {
    return this.displayName || this.fullName;
  }
}
