import { describe, expect, it } from 'vitest';
import { LabInstanceStatus, VmPhase } from '../src/entities/index.js';
import type { KubeObject } from '../src/k8s/informer.js';
import { deriveState, type ObservedInstance } from '../src/services/lab-instance.state.js';

/**
 * Status derivation from observations in the order a real cluster makes them (kubevirt/kubevirt
 * pkg/virt-controller/watch/vmi/lifecycle.go): launcher pod created and Ready first, then the VMI
 * Scheduled, Running, and only then its Ready condition True.
 */
const cond = (type: string, status: 'True' | 'False', reason?: string, message?: string) => ({ type, status, reason, message });

function vmi(name: string, uid: string, phase: string, conditions: object[] = []): KubeObject {
  return { metadata: { name, namespace: 'ns', uid }, status: { phase, conditions, nodeName: phase === 'Pending' ? undefined : 'node-1' } };
}

function pod(name: string, createdBy: string, status: Record<string, unknown>): KubeObject {
  return { metadata: { name, namespace: 'ns', labels: { 'kubevirt.io/created-by': createdBy, 'vm.kubevirt.io/name': name.split('-').slice(2, -1).join('-') } }, spec: { nodeName: 'node-1' }, status };
}

const podReady = (ready: boolean) => ({ phase: ready ? 'Running' : 'Pending', conditions: [cond('PodScheduled', 'True'), cond('Ready', ready ? 'True' : 'False')] });

function observe(vmis: KubeObject[], pods: KubeObject[], extra: Partial<ObservedInstance> = {}): ObservedInstance {
  return {
    status: LabInstanceStatus.STARTING,
    statusMessage: null,
    vmNames: vmis.map((v) => v.metadata.name),
    namespace: { metadata: { name: 'ns' }, status: { phase: 'Active' } },
    namespaceGone: false,
    vmis: (name) => vmis.find((v) => v.metadata.name === name),
    pods,
    ...extra,
  };
}

describe('status derivation from KubeVirt observations', () => {
  it('is not READY while the launcher pod is Ready but the VMI is only Scheduled', () => {
    const state = deriveState(observe([vmi('web', 'u1', 'Scheduled', [cond('Ready', 'False', 'PodNotReady')])], [pod('virt-launcher-web-abcde', 'u1', podReady(true))]));
    expect(state.status).toBe(LabInstanceStatus.STARTING);
    expect(state.vms[0]).toMatchObject({ phase: VmPhase.SCHEDULED, ready: false, podReady: true, message: null });
  });

  it('is not READY while the VMI is Running without its Ready condition', () => {
    const state = deriveState(observe([vmi('web', 'u1', 'Running', [cond('Ready', 'False', 'GuestNotRunning')])], [pod('virt-launcher-web-abcde', 'u1', podReady(true))]));
    expect(state.status).toBe(LabInstanceStatus.STARTING);
    expect(state.vms[0]).toMatchObject({ phase: VmPhase.RUNNING, ready: false, podReady: true });
  });

  it('is READY once every VMI is Running with Ready=True', () => {
    const state = deriveState(observe([vmi('web', 'u1', 'Running', [cond('Ready', 'True')])], [pod('virt-launcher-web-abcde', 'u1', podReady(true))]));
    expect(state).toMatchObject({ status: LabInstanceStatus.READY, statusMessage: null });
    expect(state.vms[0]).toMatchObject({ ready: true, podReady: true, reason: null, message: null });
  });

  it('shows VMs named web and web-2 each with its own pod, matched by kubevirt.io/created-by', () => {
    const pods = [pod('virt-launcher-web-2-zzzzz', 'u2', podReady(true)), pod('virt-launcher-web-aaaaa', 'u1', podReady(false))];
    const state = deriveState(observe([vmi('web', 'u1', 'Scheduling'), vmi('web-2', 'u2', 'Scheduled')], pods));
    expect(state.vms.map((v) => [v.name, v.podName, v.podReady])).toEqual([
      ['web', 'virt-launcher-web-aaaaa', false],
      ['web-2', 'virt-launcher-web-2-zzzzz', true],
    ]);
  });

  it('does not show the usual False conditions of a starting VMI as a message', () => {
    const starting = vmi('web', 'u1', 'Scheduling', [cond('Ready', 'False', 'PodNotExists', 'virt-launcher pod has not yet been scheduled')]);
    const state = deriveState(observe([starting], [pod('virt-launcher-web-abcde', 'u1', { phase: 'Pending', containerStatuses: [{ name: 'compute', state: { waiting: { reason: 'ContainerCreating' } } }] })]));
    expect(state.vms[0]).toMatchObject({ reason: 'ContainerCreating', message: null });
  });

  it('names an image that cannot be pulled, and an unschedulable pod with the scheduler message', () => {
    const pulling = pod('virt-launcher-web-abcde', 'u1', {
      phase: 'Pending',
      conditions: [cond('PodScheduled', 'True')],
      initContainerStatuses: [{ name: 'volumecontainerdisk-init', image: 'quay.io/x/y:z', state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "quay.io/x/y:z"' } } }],
    });
    const unschedulable = pod('virt-launcher-db-fghij', 'u2', {
      phase: 'Pending',
      conditions: [cond('PodScheduled', 'False', 'Unschedulable', '0/1 nodes are available: 1 Insufficient memory.')],
    });
    const state = deriveState(observe([vmi('web', 'u1', 'Scheduling'), vmi('db', 'u2', 'Scheduling')], [pulling, unschedulable]));
    expect(state.vms.map((v) => [v.reason, v.message])).toEqual([
      ['ImagePullBackOff', 'image quay.io/x/y:z could not be pulled (ImagePullBackOff)'],
      ['Unschedulable', 'cannot be scheduled: 0/1 nodes are available: 1 Insufficient memory.'],
    ]);
  });

  it('fails a start that misses its deadline with the first VM that held it up, and keeps it STARTING before', () => {
    const vmis = [vmi('web', 'u1', 'Scheduling')];
    const pods = [pod('virt-launcher-web-abcde', 'u1', { phase: 'Pending', containerStatuses: [{ image: 'quay.io/x/y:z', state: { waiting: { reason: 'ErrImagePull' } } }] })];
    const before = deriveState(observe(vmis, pods, { startDeadline: { at: 1000, seconds: 600, now: 999 } }));
    const after = deriveState(observe(vmis, pods, { startDeadline: { at: 1000, seconds: 600, now: 1000 } }));
    expect(before.status).toBe(LabInstanceStatus.STARTING);
    expect(after).toMatchObject({
      status: LabInstanceStatus.FAILED,
      statusMessage: 'Did not start within 600 s: VM web: image quay.io/x/y:z could not be pulled (ErrImagePull)',
    });
  });

  it('reports why a VMI failed', () => {
    const failed = vmi('web', 'u1', 'Failed', [cond('Ready', 'False', 'PodTerminating', 'virt-launcher pod is terminating')]);
    const state = deriveState(observe([failed], []));
    expect(state).toMatchObject({ status: LabInstanceStatus.FAILED, statusMessage: 'VM web failed: virt-launcher pod is terminating' });
  });
});
