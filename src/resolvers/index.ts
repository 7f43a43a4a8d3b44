import { ImageResolver } from './image.resolver.js';
import { InstructionPageResolver } from './instruction-page.resolver.js';
import { LabInstanceStatusResolver } from './lab-instance.status.resolver.js';
import { LabInstanceResolver, UserLabInstancesResolver } from './lab-instance.resolver.js';
import { LabResolver, LabVmResolver } from './lab.resolver.js';
import { UserQuotaResolver } from './lab-instance.quota.js';
import { UserResolver } from './user.resolver.js';

/** The one list of resolvers (the other registration point besides the entity list). */
export const resolvers = [UserResolver, ImageResolver, LabResolver, LabVmResolver, InstructionPageResolver, LabInstanceResolver, UserLabInstancesResolver, LabInstanceStatusResolver, UserQuotaResolver] as const;
