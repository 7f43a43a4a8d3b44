import { Image } from './image.entity.js';
import { InstructionPage, Lab, LabVm } from './lab.entity.js';
import { LabInstance } from './lab-instance.entity.js';
import { AccountToken, RateLimitBucket, Session } from './session.entity.js';
import { User } from './user.entity.js';

export { Image, InstructionPage, Lab, LabVm, LabInstance, AccountToken, RateLimitBucket, Session, User };
export { LabInstanceStatus, VmPhase, VmStatus } from './lab-instance.entity.js';

/** The one list of entities (one of the two registration points). */
export const entities = [User, Session, AccountToken, RateLimitBucket, Image, Lab, LabVm, InstructionPage, LabInstance];
