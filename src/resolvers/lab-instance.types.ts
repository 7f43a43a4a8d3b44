import { Field, ID, InputType, ObjectType } from 'type-graphql';
import { LabInstance, LabInstanceStatus, VmStatus } from '../entities/index.js';
import { connectionTypes } from '../graphql/connection.js';

export const LabInstanceConnection = connectionTypes('LabInstance', LabInstance);

@ObjectType({ description: "Access to the VNC consoles of an instance's VMs." })
export class VncAccess {
  @Field(() => String, { description: 'JWT (HS256) that the websocket proxy checks; see the contract notes for its claims.' })
  token!: string;

  @Field(() => Date, {
    description:
      'When the token stops opening consoles. Consoles opened with it close then too, unless the same login session renewed the access (renewVncAccess) before.',
  })
  expiresAt!: Date;

  @Field(() => String, {
    description: "The console page, opened on the first VM: this server's own (VNC_CONSOLE=builtin, the default) or LabVNC (VNC_CONSOLE=labvnc); the token is in its path parameter.",
  })
  url!: string;

  @Field(() => [String], { description: 'Names of the VMs this token opens.' })
  allowedVms!: string[];
}

@ObjectType({ description: 'A started lab and the access to its consoles.' })
export class StartLabPayload {
  @Field(() => LabInstance, { description: 'The new instance, STARTING.' })
  labInstance!: LabInstance;

  @Field(() => VncAccess, { description: "A token and URL for the instance's consoles." })
  vncAccess!: VncAccess;
}

@InputType({ description: 'Narrows labInstances; admins may filter by user, others see only their own.' })
export class LabInstanceFilter {
  @Field(() => ID, { nullable: true, description: 'Instances of this lab only.' })
  labId?: string | null;

  @Field(() => ID, { nullable: true, description: "This user's instances only (others than admins see only their own anyway)." })
  userId?: string | null;

  @Field(() => [LabInstanceStatus], { nullable: true, description: 'Instances in any of these statuses.' })
  status?: LabInstanceStatus[] | null;
}

@ObjectType({ description: "One change of an instance's state; the first event of a subscription is the current state." })
export class LabInstanceStatusEvent {
  @Field(() => LabInstance, { description: 'The instance, in this state.' })
  labInstance!: LabInstance;

  @Field(() => LabInstanceStatus, { description: 'The new status.' })
  status!: LabInstanceStatus;

  @Field(() => [VmStatus], { description: 'Each VM, in this state.' })
  vms!: VmStatus[];

  @Field(() => Boolean, { description: "Every VM's pod is ready." })
  ready!: boolean;

  @Field(() => Date, { nullable: true, description: 'When the instance will be stopped automatically (moves with extendLabInstance); null: never.' })
  expiresAt!: Date | null;

  @Field(() => Date, { description: 'When the server observed this state.' })
  at!: Date;
}
