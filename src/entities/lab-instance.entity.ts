import { BigIntType, type Ref } from '@mikro-orm/core';
import { Entity, Enum, Index, ManyToOne, PrimaryKey, Property } from '@mikro-orm/decorators/legacy';
import { Field, ID, ObjectType, registerEnumType } from 'type-graphql';
import { Lab } from './lab.entity.js';
import { User } from './user.entity.js';

export enum LabInstanceStatus {
  PENDING = 'PENDING',
  STARTING = 'STARTING',
  READY = 'READY',
  FAILED = 'FAILED',
  STOPPING = 'STOPPING',
  STOPPED = 'STOPPED',
}

registerEnumType(LabInstanceStatus, {
  name: 'LabInstanceStatus',
  description: 'Where an instance is in its life cycle.',
  valuesConfig: {
    PENDING: { description: 'Recorded; Kubernetes objects are being created.' },
    STARTING: { description: "Objects exist; not every VM's pod is ready yet." },
    READY: { description: "Every VM's pod is ready." },
    FAILED: { description: 'Creation failed or a VM failed; see statusMessage.' },
    STOPPING: { description: 'Stop requested; the namespace is terminating.' },
    STOPPED: { description: 'Gone from the cluster.' },
  },
});

export enum VmPhase {
  PENDING = 'PENDING',
  SCHEDULING = 'SCHEDULING',
  SCHEDULED = 'SCHEDULED',
  RUNNING = 'RUNNING',
  SUCCEEDED = 'SUCCEEDED',
  FAILED = 'FAILED',
  UNKNOWN = 'UNKNOWN',
}

registerEnumType(VmPhase, { name: 'VmPhase', description: 'Phase of a KubeVirt VirtualMachineInstance.' });

@ObjectType({ description: 'Live state of one VM of an instance, as watched from the Kubernetes API.' })
export class VmStatus {
  @Field(() => String, { description: "The LabVm name (the VirtualMachineInstance's name)." })
  name!: string;

  @Field(() => VmPhase, { description: "The VirtualMachineInstance's phase; UNKNOWN when it is missing." })
  phase!: VmPhase;

  @Field(() => Boolean, {
    description: "KubeVirt's readiness: the VirtualMachineInstance is Running with its Ready condition True (the guest runs).",
  })
  ready!: boolean;

  @Field(() => Boolean, {
    nullable: true,
    description: "The VM's virt-launcher pod reports the Ready condition (before the guest runs: not a readiness of the VM); null in rows recorded before it was kept.",
  })
  podReady?: boolean | null;

  @Field(() => String, {
    nullable: true,
    description:
      "While the VM is not ready: Kubernetes' reason from its pod or VMI (ContainerCreating, ErrImagePull, ImagePullBackOff, Unschedulable, ...).",
  })
  reason?: string | null;

  @Field(() => String, { nullable: true, description: "The VM's virt-launcher pod." })
  podName?: string | null;

  @Field(() => String, { nullable: true, description: 'The node the VM runs on.' })
  nodeName?: string | null;

  @Field(() => String, { nullable: true, description: 'What is wrong with the VM, when something is (a failed VM, an image that cannot be pulled, a pod that cannot be scheduled); null while all goes well.' })
  message?: string | null;
}

@ObjectType({ description: 'A started lab: its own namespace with one VM per LabVm.' })
@Entity({ tableName: 'lab_instances' })
export class LabInstance {
  @Field(() => ID, { description: 'Opaque identifier (a decimal number).' })
  @PrimaryKey({ type: 'integer', autoincrement: true })
  id!: number;

  @Index()
  @ManyToOne(() => Lab, { ref: true, deleteRule: 'restrict', fieldName: 'lab_id' })
  lab!: Ref<Lab>;

  @Index()
  @ManyToOne(() => User, { ref: true, deleteRule: 'restrict', fieldName: 'user_id' })
  user!: Ref<User>;

  @Field(() => String, {
    description: 'The Kubernetes namespace that holds the instance: <namespacePrefix>-<userId>-<instanceId>.',
  })
  @Property({ type: 'string', length: 63, default: '' })
  namespace: string = '';

  @Field(() => LabInstanceStatus, { description: 'See LabInstanceStatus; kept current by the server\'s watches.' })
  @Index()
  @Enum({ items: () => LabInstanceStatus, type: 'string', length: 16 })
  status: LabInstanceStatus = LabInstanceStatus.PENDING;

  @Field(() => String, { nullable: true, description: 'Why the instance FAILED or was stopped automatically.' })
  @Property({ type: 'text', nullable: true, fieldName: 'status_message' })
  statusMessage?: string | null;

  @Field(() => [VmStatus], { description: 'One entry per VM, in the order of the lab\'s VMs.' })
  @Property({ type: 'json' })
  vms: VmStatus[] = [];

  @Field(() => Date, { description: 'When startLab was called.' })
  @Property({ type: 'datetime', fieldName: 'created_at' })
  createdAt: Date = new Date();

  @Property({ type: 'datetime', fieldName: 'updated_at' })
  updatedAt: Date = new Date();

  @Field(() => Date, { nullable: true, description: 'When the instance will be stopped automatically; null: never.' })
  @Property({ type: 'datetime', nullable: true, fieldName: 'expires_at' })
  expiresAt?: Date | null;

  @Field(() => Date, { nullable: true, description: 'When the namespace was found gone.' })
  @Property({ type: 'datetime', nullable: true, fieldName: 'stopped_at' })
  stoppedAt?: Date | null;

  @Field(() => Date, {
    nullable: true,
    description:
      'The last keyboard or pointer event sent to any of its VMs through the VNC console (written at most every VNC_ACTIVITY_WRITE_SECONDS); null: none yet.',
  })
  @Property({ type: 'datetime', nullable: true, fieldName: 'last_activity_at' })
  lastActivityAt?: Date | null;

  /** CPU cores its VMs asked for when it started (the cluster-wide budget counts them). */
  @Property({ type: 'integer', fieldName: 'cpu_cores', default: 0 })
  cpuCores: number = 0;

  /** Memory its VMs asked for when it started, in bytes. */
  @Property({ type: new BigIntType('number'), fieldName: 'memory_bytes', default: 0 })
  memoryBytes: number = 0;
}
