import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261125000000Initial } from './Migration20261125000000_initial.js';
import { Migration20261125000100CatalogueVersion } from './Migration20261125000100_catalogue_version.js';
import { Migration20261201000000InstanceLifecycle } from './Migration20261201000000_instance_lifecycle.js';
import { Migration20261202000000VncConsole } from './Migration20261202000000_vnc_console.js';

/** Every migration, in order. Listed explicitly so that the same list runs from src/ and dist/. */
export const migrationsList: MigrationObject[] = [
  { name: 'Migration20261125000000_initial', class: Migration20261125000000Initial },
  { name: 'Migration20261125000100_catalogue_version', class: Migration20261125000100CatalogueVersion },
  { name: 'Migration20261201000000_instance_lifecycle', class: Migration20261201000000InstanceLifecycle },
  { name: 'Migration20261202000000_vnc_console', class: Migration20261202000000VncConsole },
];
