import { Image } from './image.entity.js';
import { InstructionPage } from './instruction-page.entity.js';
import { Lab } from './lab.entity.js';
import { LabVm } from './lab-vm.entity.js';
import { LabInstance } from './lab-instance.entity.js';
import { AccountToken } from './account-token.entity.js';
import { RateLimitBucket } from './rate-limit-bucket.entity.js';
import { Session } from './session.entity.js';
import { User } from './user.entity.js';
import { VncGrant } from './vnc-grant.entity.js';

export { Image, InstructionPage, Lab, LabVm, LabInstance, AccountToken, RateLimitBucket, Session, User, VncGrant };
export type { AccountTokenPurpose } from './account-token.entity.js';
export { LabInstanceStatus, VmPhase, VmStatus } from './lab-instance.entity.js';

/** The one list of entities (one of the two registration points). */
export const entities = [User, Session, AccountToken, RateLimitBucket, Image, Lab, LabVm, InstructionPage, LabInstance, VncGrant];
