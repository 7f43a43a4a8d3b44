import { Migration } from '@mikro-orm/migrations';
import { statementsFor } from './statements.js';

/** The initial schema. Timestamps are timestamptz on PostgreSQL (UTC). */
export class Migration20261125000000Initial extends Migration {
  override up(): void {
    for (const sql of statementsFor(this.driver, { postgres: POSTGRES, sqlite: SQLITE })) this.addSql(sql);
  }
}

const POSTGRES = [
  `create table "users" ("id" serial primary key, "email" varchar(254) not null,` +
    ` "password_hash" varchar(255) not null, "first_name" varchar(150) not null,` +
    ` "last_name" varchar(150) not null default '', "display_name" varchar(150) not null default '',` +
    ` "is_trusted" boolean not null default '0', "is_admin" boolean not null default '0',` +
    ` "is_active" boolean not null default '1', "email_verified" boolean not null default '0',` +
    ` "date_joined" timestamptz(3) not null, "last_login" timestamptz(3) null)`,
  `alter table "users" add constraint "users_email_unique" unique ("email")`,
  `create table "sessions" ("id" varchar(64), "user_id" integer not null,` +
    ` "created_at" timestamptz(3) not null, "expires_at" timestamptz(3) not null,` +
    ` "revoked_at" timestamptz(3) null, constraint "sessions_pkey" primary key ("id"))`,
  `alter table "sessions" add constraint "sessions_user_id_foreign" foreign key ("user_id") references "users" ("id") on delete CASCADE`,
  `create index "sessions_user_id_index" on "sessions" ("user_id")`,
  `create table "account_tokens" ("id" serial primary key, "token_hash" varchar(64) not null,` +
    ` "purpose" varchar(32) not null, "user_id" integer not null, "created_at" timestamptz(3) not null,` +
    ` "expires_at" timestamptz(3) not null, "used_at" timestamptz(3) null)`,
  `alter table "account_tokens" add constraint "account_tokens_token_hash_unique" unique ("token_hash")`,
  `alter table "account_tokens" add constraint "account_tokens_user_id_foreign" foreign key ("user_id") references "users" ("id") on delete CASCADE`,
  `create index "account_tokens_user_id_index" on "account_tokens" ("user_id")`,
  `create table "rate_limits" ("key" varchar(255), "count" integer not null,` +
    ` "reset_at" timestamptz(3) not null, constraint "rate_limits_pkey" primary key ("key"))`,
  `create table "images" ("id" serial primary key, "name" varchar(32) not null,` +
    ` "description" varchar(128) not null, "url" varchar(256) not null,` +
    ` "cpu_cores" integer not null default '3', "memory" varchar(32) not null default '3G',` +
    ` "created_at" timestamptz(3) not null)`,
  `alter table "images" add constraint "images_name_unique" unique ("name")`,
  `create table "labs" ("id" serial primary key, "name" varchar(32) not null,` +
    ` "namespace_prefix" varchar(32) not null, "description" varchar(128) not null,` +
    ` "instance_lifetime_minutes" integer null, "created_at" timestamptz(3) not null)`,
  `alter table "labs" add constraint "labs_name_unique" unique ("name")`,
  `alter table "labs" add constraint "labs_namespace_prefix_unique" unique ("namespace_prefix")`,
  `create table "lab_vms" ("id" serial primary key, "name" varchar(63) not null,` +
    ` "lab_id" integer not null, "image_id" integer not null)`,
  `alter table "lab_vms" add constraint "lab_vms_lab_id_foreign" foreign key ("lab_id") references "labs" ("id") on delete CASCADE`,
  `create index "lab_vms_lab_id_index" on "lab_vms" ("lab_id")`,
  `alter table "lab_vms" add constraint "lab_vms_image_id_foreign" foreign key ("image_id") references "images" ("id") on delete RESTRICT`,
  `create index "lab_vms_image_id_index" on "lab_vms" ("image_id")`,
  `alter table "lab_vms" add constraint "lab_vms_lab_id_name_unique" unique ("lab_id", "name")`,
  `create table "instruction_pages" ("id" serial primary key, "title" varchar(128) not null,` +
    ` "content" text null, "position" integer not null default '0', "lab_id" integer not null)`,
  `alter table "instruction_pages" add constraint "instruction_pages_lab_id_foreign" foreign key ("lab_id") references "labs" ("id") on delete CASCADE`,
  `create index "instruction_pages_lab_id_index" on "instruction_pages" ("lab_id")`,
  `create table "lab_instances" ("id" serial primary key, "lab_id" integer not null,` +
    ` "user_id" integer not null, "namespace" varchar(63) not null default '',` +
    ` "status" varchar(16) not null, "status_message" text null, "vms" jsonb not null,` +
    ` "created_at" timestamptz(3) not null, "updated_at" timestamptz(3) not null,` +
    ` "expires_at" timestamptz(3) null, "stopped_at" timestamptz(3) null)`,
  `alter table "lab_instances" add constraint "lab_instances_lab_id_foreign" foreign key ("lab_id") references "labs" ("id") on delete RESTRICT`,
  `create index "lab_instances_lab_id_index" on "lab_instances" ("lab_id")`,
  `alter table "lab_instances" add constraint "lab_instances_user_id_foreign" foreign key ("user_id") references "users" ("id") on delete RESTRICT`,
  `create index "lab_instances_user_id_index" on "lab_instances" ("user_id")`,
  `create index "lab_instances_status_index" on "lab_instances" ("status")`,
];

const SQLITE = [
  "create table `users` (`id` integer not null primary key autoincrement," +
    " `email` varchar(254) not null, `password_hash` varchar(255) not null," +
    " `first_name` varchar(150) not null, `last_name` varchar(150) not null default ''," +
    " `display_name` varchar(150) not null default '', `is_trusted` boolean not null default '0'," +
    " `is_admin` boolean not null default '0', `is_active` boolean not null default '1'," +
    " `email_verified` boolean not null default '0', `date_joined` datetime not null," +
    " `last_login` datetime null)",
  "create unique index `users_email_unique` on `users` (`email`)",
  "create table `sessions` (`id` varchar(64), `user_id` integer not null," +
    " `created_at` datetime not null, `expires_at` datetime not null, `revoked_at` datetime null," +
    " foreign key(`user_id`) references `users`(`id`) on delete CASCADE, primary key (`id`))",
  "create index `sessions_user_id_index` on `sessions` (`user_id`)",
  "create table `account_tokens` (`id` integer not null primary key autoincrement," +
    " `token_hash` varchar(64) not null, `purpose` varchar(32) not null, `user_id` integer not null," +
    " `created_at` datetime not null, `expires_at` datetime not null, `used_at` datetime null," +
    " foreign key(`user_id`) references `users`(`id`) on delete CASCADE)",
  "create unique index `account_tokens_token_hash_unique` on `account_tokens` (`token_hash`)",
  "create index `account_tokens_user_id_index` on `account_tokens` (`user_id`)",
  "create table `rate_limits` (`key` varchar(255), `count` integer not null," +
    " `reset_at` datetime not null, primary key (`key`))",
  "create table `images` (`id` integer not null primary key autoincrement, `name` varchar(32) not null," +
    " `description` varchar(128) not null, `url` varchar(256) not null," +
    " `cpu_cores` integer not null default '3', `memory` varchar(32) not null default '3G'," +
    " `created_at` datetime not null)",
  "create unique index `images_name_unique` on `images` (`name`)",
  "create table `labs` (`id` integer not null primary key autoincrement, `name` varchar(32) not null," +
    " `namespace_prefix` varchar(32) not null, `description` varchar(128) not null," +
    " `instance_lifetime_minutes` integer null, `created_at` datetime not null)",
  "create unique index `labs_name_unique` on `labs` (`name`)",
  "create unique index `labs_namespace_prefix_unique` on `labs` (`namespace_prefix`)",
  "create table `lab_vms` (`id` integer not null primary key autoincrement," +
    " `name` varchar(63) not null, `lab_id` integer not null, `image_id` integer not null," +
    " foreign key(`lab_id`) references `labs`(`id`) on delete CASCADE," +
    " foreign key(`image_id`) references `images`(`id`) on delete RESTRICT)",
  "create index `lab_vms_lab_id_index` on `lab_vms` (`lab_id`)",
  "create index `lab_vms_image_id_index` on `lab_vms` (`image_id`)",
  "create unique index `lab_vms_lab_id_name_unique` on `lab_vms` (`lab_id`, `name`)",
  "create table `instruction_pages` (`id` integer not null primary key autoincrement," +
    " `title` varchar(128) not null, `content` text null, `position` integer not null default '0'," +
    " `lab_id` integer not null, foreign key(`lab_id`) references `labs`(`id`) on delete CASCADE)",
  "create index `instruction_pages_lab_id_index` on `instruction_pages` (`lab_id`)",
  "create table `lab_instances` (`id` integer not null primary key autoincrement," +
    " `lab_id` integer not null, `user_id` integer not null, `namespace` varchar(63) not null default ''," +
    " `status` varchar(16) not null, `status_message` text null, `vms` json not null," +
    " `created_at` datetime not null, `updated_at` datetime not null, `expires_at` datetime null," +
    " `stopped_at` datetime null, foreign key(`lab_id`) references `labs`(`id`) on delete RESTRICT," +
    " foreign key(`user_id`) references `users`(`id`) on delete RESTRICT)",
  "create index `lab_instances_lab_id_index` on `lab_instances` (`lab_id`)",
  "create index `lab_instances_user_id_index` on `lab_instances` (`user_id`)",
  "create index `lab_instances_status_index` on `lab_instances` (`status`)",
];
