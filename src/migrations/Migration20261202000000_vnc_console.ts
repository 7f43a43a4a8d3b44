import { Migration } from '@mikro-orm/migrations';
import { statementsFor } from './statements.js';

/**
 * The built-in VNC console:
 * - `lab_instances.last_activity_at`: the last keyboard or pointer event seen on any of its consoles;
 * - `vnc_grants`: which login session issued each VNC token (the token's claims are fixed by the
 *   original proxy, so this is kept beside it), so that a logout ends the consoles opened with it and
 *   a renewal through the same session extends them. Keyed by the SHA-256 of the token.
 */
export class Migration20261202000000VncConsole extends Migration {
  override up(): void {
    for (const sql of statementsFor(this.driver, { postgres: POSTGRES, sqlite: SQLITE })) this.addSql(sql);
  }
}

const POSTGRES = [
  `alter table "lab_instances" add column "last_activity_at" timestamptz(3) null`,
  `create table "vnc_grants" ("token_hash" varchar(64), "session_id" varchar(64) not null,` +
    ` "user_id" integer not null, "instance_id" integer not null, "expires_at" timestamptz(3) not null,` +
    ` constraint "vnc_grants_pkey" primary key ("token_hash"))`,
  `create index "vnc_grants_session_id_index" on "vnc_grants" ("session_id")`,
  `create index "vnc_grants_expires_at_index" on "vnc_grants" ("expires_at")`,
];

const SQLITE = [
  "alter table `lab_instances` add column `last_activity_at` datetime null",
  "create table `vnc_grants` (`token_hash` varchar(64), `session_id` varchar(64) not null," +
    " `user_id` integer not null, `instance_id` integer not null, `expires_at` datetime not null," +
    " primary key (`token_hash`))",
  "create index `vnc_grants_session_id_index` on `vnc_grants` (`session_id`)",
  "create index `vnc_grants_expires_at_index` on `vnc_grants` (`expires_at`)",
];
