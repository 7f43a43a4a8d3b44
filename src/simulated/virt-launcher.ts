import { createHash, randomBytes } from 'node:crypto';
import { bytesQuantity, ceilValue, cpuQuantity, parseQuantity } from './quantity.js';
import type { KubeObject } from './resources.js';

/**
 * The virt-launcher pod KubeVirt's virt-controller renders for a VMI: pure builders, no state.
 * follows kubevirt/kubevirt pkg/virt-controller/services/template.go (renderLaunchManifest, podLabels,
 * generatePodAnnotations, readinessGates), pkg/container-disk/container-disk.go (one container and one
 * init container per containerDisk volume), pkg/virt-controller/services/serialconsolelog.go and
 * pkg/hypervisor/kvm/hypervisorbackend.go (memory overhead).
 */

export type VmiPhase = 'Pending' | 'Scheduling' | 'Scheduled' | 'Running' | 'Succeeded' | 'Failed';

/** The default node name; SimulatedClusterOptions.node can change it. */
export const NODE_NAME = 'sim-node-1';
/** staging/src/kubevirt.io/api/core/v1/types.go: VirtualMachineUnpaused, the launcher pod's readiness gate. */
export const UNPAUSED_CONDITION = 'kubevirt.io/virtual-machine-unpaused';
export const COMPUTE = 'compute';

const ALNUM = 'bcdfghjklmnpqrstvwxz2456789'; // k8s.io/apimachinery/pkg/util/rand: the alphabet of generated names

export function randomSuffix(length = 5): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += ALNUM[b % ALNUM.length];
  return out;
}

/**
 * follows kubernetes staging/src/k8s.io/apiserver/pkg/storage/names/generate.go: the base is cut to
 * 63 - 5 = 58 characters and five random characters are appended.
 */
export function generateName(base: string): string {
  return base.slice(0, 58) + randomSuffix(5);
}

/** follows kubevirt/kubevirt pkg/util/net/dns/sanitize.go SanitizeHostname: up to the first dot, at most 63 characters, or spec.hostname. */
export function sanitizeHostname(vmi: KubeObject): string {
  const hostname = (vmi.spec as { hostname?: unknown } | undefined)?.hostname;
  if (typeof hostname === 'string' && hostname) return hostname;
  return (vmi.metadata.name ?? '').split('.')[0].slice(0, 63);
}

/** follows kubevirt/kubevirt pkg/apimachinery/labels.go CalculateVirtualMachineInstanceID: the name, or a cut name and a SHA-1 when longer than 63. */
export function vmiId(name: string): string {
  if (name.length <= 63) return name;
  return `${name.slice(0, 63 - 8 - 1)}-${createHash('sha1').update(name).digest('hex').slice(0, 8)}`;
}

interface VolumeSpec {
  name: string;
  containerDisk?: { image?: string };
  persistentVolumeClaim?: { claimName?: string };
  dataVolume?: { name?: string };
}

export function volumesOf(vmi: KubeObject): VolumeSpec[] {
  const volumes = (vmi.spec as { volumes?: unknown } | undefined)?.volumes;
  return Array.isArray(volumes) ? (volumes as VolumeSpec[]) : [];
}

/** The containerDisk volumes, whose images the kubelet pulls for the pod. */
export function containerDisks(vmi: KubeObject): Array<{ name: string; image: string; index: number }> {
  return volumesOf(vmi)
    .map((v, index) => ({ v, index }))
    .filter(({ v }) => v.containerDisk)
    .map(({ v, index }) => ({ name: v.name, image: String(v.containerDisk?.image ?? ''), index }));
}

type Domain = {
  cpu?: { cores?: number; sockets?: number; threads?: number };
  resources?: { requests?: Record<string, unknown> };
  memory?: { guest?: unknown };
  devices?: { autoattachGraphicsDevice?: boolean; interfaces?: unknown[]; hostDevices?: unknown[]; gpus?: unknown[] };
};

export function domainOf(vmi: KubeObject): Domain {
  return ((vmi.spec as { domain?: Domain } | undefined)?.domain ?? {}) as Domain;
}

/** follows kubevirt/kubevirt pkg/util/hardware/hw_utils.go GetNumberOfVCPUs; no topology counts as one vCPU. */
export function vcpusOf(vmi: KubeObject): number {
  const cpu = domainOf(vmi).cpu ?? {};
  let n = Number(cpu.cores ?? 0);
  for (const k of [cpu.sockets, cpu.threads]) {
    const v = Number(k ?? 0);
    if (v) n = n ? n * v : v;
  }
  return n > 0 ? n : 1;
}

/** Guest memory in bytes: the request, else spec.domain.memory.guest. */
export function guestMemoryOf(vmi: KubeObject): number {
  const domain = domainOf(vmi);
  const q = parseQuantity(domain.resources?.requests?.memory) ?? parseQuantity(domain.memory?.guest);
  return q ? ceilValue(q) : 0;
}

const MI = 2 ** 20;

/**
 * follows kubevirt/kubevirt pkg/hypervisor/kvm/hypervisorbackend.go GetMemoryOverhead for a plain VMI:
 * page tables (1 byte per 512 of guest RAM, counted in kB), virt-launcher-monitor 25Mi + virt-launcher
 * 100Mi + virtlogd 25Mi + virtqemud 40Mi + qemu 50Mi, 8Mi per vCPU, 8Mi for the IO thread and 32Mi of
 * video RAM unless the graphics device is off. (Probes, TPM, SEV, VFIO, hugepages... are not modelled.)
 */
export function memoryOverhead(vmi: KubeObject): number {
  const kilo = Math.ceil(guestMemoryOf(vmi) / 1000);
  let overhead = Math.floor(kilo / 512) * 1000;
  overhead += (25 + 100 + 25 + 40 + 50) * MI;
  overhead += 8 * MI * vcpusOf(vmi);
  overhead += 8 * MI;
  if (domainOf(vmi).devices?.autoattachGraphicsDevice !== false) overhead += 32 * MI;
  return overhead;
}

/** What the pod asks the scheduler for: the compute container's requests (the helper containers' few millicores are left out). */
export function podRequests(vmi: KubeObject): { cpu: number; memory: number } {
  const explicit = parseQuantity(domainOf(vmi).resources?.requests?.cpu);
  // follows kubevirt/kubevirt pkg/virt-controller/services/renderresources.go WithoutDedicatedCPU:
  // vCPUs divided by the cluster's cpuAllocationRatio, 10 by default (pkg/virt-config).
  const cpu = explicit ? explicit.value : vcpusOf(vmi) / 10;
  return { cpu, memory: guestMemoryOf(vmi) + memoryOverhead(vmi) };
}

function container(name: string, image: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name, image, imagePullPolicy: 'IfNotPresent', terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', ...extra };
}

/** Annotations of the VMI that template.go filterVMIAnnotationsForPod passes on to the pod. */
function passedAnnotations(vmi: KubeObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(vmi.metadata.annotations ?? {})) {
    if (k.startsWith('kubectl.kubernetes.io') || k.startsWith('kubevirt.io/storage-observed-api-version') ||
      k.startsWith('kubevirt.io/latest-observed-api-version')) continue;
    out[k] = v;
  }
  return out;
}

/**
 * The pod as virt-controller creates it (the API server then picks the name from generateName).
 * Labels: the VMI's own, then kubevirt.io=virt-launcher, kubevirt.io/created-by=<VMI uid>,
 * vm.kubevirt.io/name=<sanitized hostname>, vmi.kubevirt.io/id (template.go podLabels). The owner reference
 * is a controller reference to the VMI. The compute container has no readiness probe unless the VMI has
 * one, so it is ready as soon as it runs; the pod's readiness gate is virt-controller's unpaused condition.
 */
export function buildLauncherPod(vmi: KubeObject, launcherImage: string): KubeObject {
  const name = vmi.metadata.name ?? '';
  const hostname = sanitizeHostname(vmi);
  const disks = containerDisks(vmi);
  const requests = podRequests(vmi);
  const grace = Number((vmi.spec as { terminationGracePeriodSeconds?: number } | undefined)?.terminationGracePeriodSeconds ?? 30);
  const subdomain = (vmi.spec as { subdomain?: string } | undefined)?.subdomain;
  const devices = { 'devices.kubevirt.io/kvm': '1', 'devices.kubevirt.io/tun': '1', 'devices.kubevirt.io/vhost-net': '1' };
  // container-disk.go: the disks are mounted under /var/run/kubevirt/container-disks/<VMI uid>, with small fixed resources.
  const diskDir = `/var/run/kubevirt/container-disks/${vmi.metadata.uid ?? ''}`;
  const diskMounts = [{ name: 'container-disks', mountPath: diskDir }, { name: 'virt-bin-share-dir', mountPath: '/usr/bin' }];
  const diskResources = { requests: { cpu: '1m', memory: '1M', 'ephemeral-storage': '50M' }, limits: { cpu: '10m', memory: '40M' } };
  const initContainers = [
    // serialconsolelog.go: a restartable init container (a sidecar), on unless the cluster disables it.
    container('guest-console-log', launcherImage, {
      command: ['/usr/bin/virt-tail'], args: ['--logfile', `/var/run/kubevirt-private/${vmi.metadata.uid ?? ''}/virt-serial0-log`],
      restartPolicy: 'Always', resources: { requests: { cpu: '5m', memory: '35M' }, limits: { cpu: '15m', memory: '60M' } },
    }),
    ...(disks.length ? [container('container-disk-binary', launcherImage, {
      command: ['/usr/bin/cp'], args: ['--preserve=all', '/usr/bin/container-disk', '/init/usr/bin/container-disk'],
    })] : []),
    // container-disk.go GenerateInitContainers: pre-pulls every containerDisk image before virt-launcher starts.
    ...disks.map((d) => container(`volume${d.name}-init`, d.image, {
      command: ['/usr/bin/container-disk'], args: ['--no-op'], volumeMounts: diskMounts, resources: diskResources,
    })),
  ];
  const containers = [
    container(COMPUTE, launcherImage, {
      command: ['/usr/bin/virt-launcher-monitor'],
      resources: {
        requests: { cpu: cpuQuantity(requests.cpu), memory: bytesQuantity(requests.memory), 'ephemeral-storage': '50M', ...devices },
        limits: devices,
      },
    }),
    ...disks.map((d) => container(`volume${d.name}`, d.image, {
      command: ['/usr/bin/container-disk'], args: ['--copy-path', `${diskDir}/disk_${d.index}`], volumeMounts: diskMounts, resources: diskResources,
    })),
  ];
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      generateName: `virt-launcher-${name}-`,
      namespace: vmi.metadata.namespace,
      labels: {
        ...(vmi.metadata.labels ?? {}),
        'kubevirt.io': 'virt-launcher',
        'kubevirt.io/created-by': vmi.metadata.uid ?? '',
        'vm.kubevirt.io/name': hostname,
        'vmi.kubevirt.io/id': vmiId(name),
      },
      annotations: {
        'kubevirt.io/domain': name,
        ...passedAnnotations(vmi),
        'kubectl.kubernetes.io/default-container': COMPUTE,
        'kubevirt.io/migrationTransportUnix': 'true',
        'descheduler.alpha.kubernetes.io/request-evict-only': '',
      },
      ownerReferences: [{
        apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name, uid: vmi.metadata.uid,
        controller: true, blockOwnerDeletion: true,
      }],
    },
    spec: {
      hostname,
      ...(subdomain ? { subdomain } : {}),
      // template.go: the VMI's grace period (30 s by default) padded twice by 15 s.
      terminationGracePeriodSeconds: grace + 30,
      restartPolicy: 'Never',
      readinessGates: [{ conditionType: UNPAUSED_CONDITION }],
      enableServiceLinks: false,
      automountServiceAccountToken: false,
      schedulerName: 'default-scheduler',
      nodeSelector: { 'kubevirt.io/schedulable': 'true' },
      securityContext: { runAsUser: 107, runAsGroup: 107, runAsNonRoot: true, fsGroup: 107 },
      initContainers,
      containers,
      volumes: [
        { name: 'private', emptyDir: {} },
        { name: 'container-disks', emptyDir: {} },
        { name: 'virt-bin-share-dir', emptyDir: {} },
      ],
    },
  };
}

/** Kubernetes' QoS class of a launcher pod: requests without equal limits make it Burstable. */
export const LAUNCHER_QOS = 'Burstable';
