import { randomMac } from './kubelet.js';
import type { KubeObject } from './resources.js';
import { timestamp } from './store.js';
import { domainOf, vcpusOf, volumesOf } from './virt-launcher.js';

/**
 * What virt-handler, KubeVirt's node agent, writes on a VMI once virt-launcher's domain runs:
 * phase Running with the conditions it computes then. Pure functions over the VMI.
 */

export type NetworkInterfaceDefault = 'bridge' | 'masquerade';

interface Iface { name?: string; masquerade?: unknown; bridge?: unknown; passt?: unknown; passtBinding?: unknown; binding?: unknown }
interface Network { name?: string; pod?: unknown }

/**
 * The VMI's interfaces and networks, with the default the mutating webhook would add when it names none
 * (kubevirt/kubevirt pkg/network/vmispec/defaults.go SetDefaultNetworkInterface: one interface of the
 * cluster's default type, "bridge" unless configured (pkg/virt-config/virt-config.go
 * DefaultNetworkInterface), named "default", on the pod network). The simulation does not write the
 * default into the spec; it only uses it here.
 */
export function effectiveNetworks(vmi: KubeObject, defaultInterface: NetworkInterfaceDefault): { ifaces: Iface[]; networks: Network[] } {
  const spec = (vmi.spec ?? {}) as { networks?: Network[]; domain?: { devices?: { interfaces?: Iface[]; autoattachPodInterface?: boolean } } };
  const ifaces = spec.domain?.devices?.interfaces ?? [];
  const networks = spec.networks ?? [];
  if (ifaces.length || networks.length || spec.domain?.devices?.autoattachPodInterface === false) return { ifaces, networks };
  return { ifaces: [{ name: 'default', [defaultInterface]: {} }], networks: [{ name: 'default', pod: {} }] };
}

/**
 * follows kubevirt/kubevirt pkg/network/vmispec/interface.go VerifyVMIMigratable: a VMI on the pod
 * network migrates only with masquerade (or passt), or bridge with the
 * kubevirt.io/allow-pod-bridge-network-live-migration annotation.
 */
function interfaceMigrationError(vmi: KubeObject, defaultInterface: NetworkInterfaceDefault): string | undefined {
  const { ifaces, networks } = effectiveNetworks(vmi, defaultInterface);
  if (ifaces.length === 0) return undefined;
  const podNetwork = networks.find((n) => n.pod);
  if (!podNetwork) return undefined;
  const primary = ifaces.find((i) => i.name === podNetwork.name);
  if (!primary) return `no primary interface found for network ${podNetwork.name ?? ''}`;
  if (primary.masquerade || primary.passtBinding || primary.passt) return undefined;
  if (primary.bridge && 'kubevirt.io/allow-pod-bridge-network-live-migration' in (vmi.metadata.annotations ?? {})) return undefined;
  return 'cannot migrate VMI which does not use masquerade or a migratable plugin to connect to the pod network';
}

/**
 * follows kubevirt/kubevirt pkg/virt-handler/vm.go calculateLiveMigrationCondition (interfaces first,
 * then host devices, then disks: a PVC whose access mode is unknown cannot migrate) and
 * checkVolumesForMigration (any local volume, a containerDisk included, makes it a block migration);
 * and calculateLiveStorageMigrationCondition for StorageLiveMigratable.
 */
export function migrationConditions(vmi: KubeObject, defaultInterface: NetworkInterfaceDefault): {
  conditions: Array<Record<string, unknown>>;
  migrationMethod: 'BlockMigration' | 'LiveMigration';
} {
  const devices = domainOf(vmi).devices ?? {};
  const ifaceError = interfaceMigrationError(vmi, defaultInterface);
  let blockMigration = false;
  let diskError: string | undefined;
  for (const v of volumesOf(vmi)) {
    if (v.persistentVolumeClaim || v.dataVolume) {
      const claim = v.persistentVolumeClaim?.claimName ?? v.dataVolume?.name ?? '';
      diskError ??= `cannot migrate VMI: Unable to determine if PVC ${claim} is shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)`;
      blockMigration = true;
    } else {
      blockMigration = true;
    }
  }
  const hostDeviceError = (devices.hostDevices?.length ?? 0) > 0 ? 'VMI specifies non-migratable generic PCI host device'
    : (devices.gpus?.length ?? 0) > 1 ? 'VMI specifies too many GPUs' : undefined;
  const notMigratable = (reason: string, message: string) => ({ type: 'LiveMigratable', status: 'False', lastProbeTime: null, lastTransitionTime: null, reason, message });
  const live = ifaceError ? notMigratable('InterfaceNotLiveMigratable', ifaceError)
    : hostDeviceError ? notMigratable('HostDeviceNotLiveMigratable', hostDeviceError)
      : diskError ? notMigratable('DisksNotLiveMigratable', diskError)
        : { type: 'LiveMigratable', status: 'True', lastProbeTime: null, lastTransitionTime: null };
  const storageReasons = [
    ...(ifaceError ? [`InterfaceNotLiveMigratable: ${ifaceError}`] : []),
    ...(hostDeviceError ? [`HostDeviceNotLiveMigratable: ${hostDeviceError}`] : []),
  ];
  const storage = storageReasons.length
    ? { type: 'StorageLiveMigratable', status: 'False', lastProbeTime: null, lastTransitionTime: null, reason: 'NotMigratable', message: storageReasons.join(', ') }
    : { type: 'StorageLiveMigratable', status: 'True', lastProbeTime: null, lastTransitionTime: null };
  return { conditions: [live, storage], migrationMethod: blockMigration ? 'BlockMigration' : 'LiveMigration' };
}

/**
 * The domain is up: virt-handler reports phase Running (pkg/virt-handler/vm.go
 * calculateVmPhaseForStatusReason: a running domain), and in the same status update the migration
 * conditions (updateVMIConditions), the migration method, the interfaces (pkg/network/setup/netstat.go,
 * simplified: the pod IP and a MAC, no guest agent) and the CPU topology the guest got.
 */
export function domainStarted(vmi: KubeObject, podIP: string | undefined, defaultInterface: NetworkInterfaceDefault): void {
  const status = { ...(vmi.status ?? {}) };
  vmi.status = status;
  const { conditions, migrationMethod } = migrationConditions(vmi, defaultInterface);
  const list = ((status.conditions ?? []) as Array<Record<string, unknown>>).filter((c) => c.type !== 'LiveMigratable' && c.type !== 'StorageLiveMigratable');
  status.conditions = [...list, ...conditions];
  status.migrationMethod = migrationMethod;
  const { ifaces, networks } = effectiveNetworks(vmi, defaultInterface);
  const podNetwork = networks.find((n) => n.pod)?.name;
  status.interfaces = ifaces.map((i) => ({
    name: i.name, mac: randomMac(), infoSource: 'domain', queueCount: 1,
    ...(i.name === podNetwork && podIP ? { ipAddress: podIP, ipAddresses: [podIP], podInterfaceName: 'eth0' } : {}),
  }));
  const cpu = domainOf(vmi).cpu ?? {};
  status.currentCPUTopology = { cores: Number(cpu.cores ?? vcpusOf(vmi)), sockets: Number(cpu.sockets ?? 1), threads: Number(cpu.threads ?? 1) };
  status.guestOSInfo = {};
  setPhase(vmi, 'Running');
}

/**
 * A phase change with its transition timestamp (pkg/controller/controller.go SetVMIPhaseTransitionTimestamp).
 * Edits vmi.status in place: the caller owns that object.
 */
export function setPhase(vmi: KubeObject, phase: string): void {
  const status = (vmi.status ??= {});
  if (status.phase === phase) return;
  status.phase = phase;
  const stamps = Array.isArray(status.phaseTransitionTimestamps) ? status.phaseTransitionTimestamps : [];
  status.phaseTransitionTimestamps = [...stamps, { phase, phaseTransitionTimestamp: timestamp() }];
}
