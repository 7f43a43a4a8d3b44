import type { V1Namespace, V1NetworkPolicy } from '@kubernetes/client-node';
import { instanceLabels, type InstanceRef } from './labels.js';

/** Everything needed to build an instance's objects: plain data, no entities. */
export interface InstanceSpec extends InstanceRef {
  namespace: string;
  vms: VmSpec[];
}

export interface VmSpec {
  name: string;
  image: string;
  cpuCores: number;
  memory: string;
}

export const NETWORK_POLICY_NAME = 'allow-same-namespace';
export const KUBEVIRT_GROUP = 'kubevirt.io';
export const KUBEVIRT_VERSION = 'v1';
export const VMI_PLURAL = 'virtualmachineinstances';

/** KubeVirt's VirtualMachineInstance, as much of it as this server writes and reads. */
export interface VirtualMachineInstance {
  apiVersion: 'kubevirt.io/v1';
  kind: 'VirtualMachineInstance';
  metadata: { name: string; namespace: string; labels: Record<string, string>; resourceVersion?: string; uid?: string };
  spec: {
    domain: {
      cpu: { cores: number };
      resources: { requests: { memory: string } };
      devices: {
        disks: { name: string; disk: Record<string, never> }[];
        interfaces: { name: string; masquerade: Record<string, never> }[];
        inputs: { name: string; type: 'tablet'; bus: 'usb' | 'virtio' }[];
      };
    };
    networks: { name: string; pod: Record<string, never> }[];
    volumes: { name: string; containerDisk: { image: string } }[];
  };
  status?: { phase?: string; nodeName?: string; conditions?: { type: string; status: string; message?: string; reason?: string }[] };
}

export function buildNamespace(spec: InstanceSpec): V1Namespace {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name: spec.namespace, labels: instanceLabels(spec) } };
}

/** Every pod of the namespace accepts ingress only from pods of the same namespace. */
export function buildNetworkPolicy(spec: InstanceSpec): V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: NETWORK_POLICY_NAME, namespace: spec.namespace, labels: instanceLabels(spec) },
    spec: {
      podSelector: {},
      policyTypes: ['Ingress'],
      ingress: [{ _from: [{ podSelector: {} }] }],
    },
  };
}

/**
 * One VM. The pod network is declared with the masquerade binding rather than left to KubeVirt's
 * mutating webhook, which would add it with the cluster's default binding (bridge, per
 * kubevirt/kubevirt pkg/network/vmispec/defaults.go) that some clusters forbid on the pod network
 * and that makes the VMI non-migratable; masquerade gives each VM the pod's address, so the VMs of
 * one namespace reach each other. The USB tablet makes the VNC pointer absolute, so it lines up.
 */
export function buildVirtualMachineInstance(spec: InstanceSpec, vm: VmSpec): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: vm.name, namespace: spec.namespace, labels: instanceLabels(spec) },
    spec: {
      domain: {
        cpu: { cores: vm.cpuCores },
        resources: { requests: { memory: vm.memory } },
        devices: {
          disks: [{ name: 'containerdisk', disk: {} }],
          interfaces: [{ name: 'default', masquerade: {} }],
          inputs: [{ name: 'tablet', type: 'tablet', bus: 'usb' }],
        },
      },
      networks: [{ name: 'default', pod: {} }],
      volumes: [{ name: 'containerdisk', containerDisk: { image: vm.image } }],
    },
  };
}
