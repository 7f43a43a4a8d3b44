import type { KubeObject } from './resources.js';
import { podRequests } from './virt-launcher.js';

/** One node's name and allocatable resources (CPU in cores, memory in bytes). */
export interface NodeCapacity {
  name: string;
  cpu: number;
  memory: number;
}

/**
 * follows kubernetes pkg/scheduler/framework/plugins/noderesources/fit.go ("Insufficient <resource>")
 * and pkg/scheduler/framework/types.go FitError ("0/N nodes are available: ..."), with the default
 * preemption plugin's postfilter message: the VMI's launcher pod is compared with the node's allocatable
 * resources. Undefined when it fits; otherwise the message of PodScheduled=False, reason Unschedulable.
 */
export function unschedulableMessage(vmi: KubeObject, node: NodeCapacity): string | undefined {
  const req = podRequests(vmi);
  const reasons: string[] = [];
  if (req.cpu > node.cpu) reasons.push('Insufficient cpu');
  if (req.memory > node.memory) reasons.push('Insufficient memory');
  if (reasons.length === 0) return undefined;
  const counted = reasons.sort().map((r) => `1 ${r}`).join(', ');
  return `0/1 nodes are available: ${counted}. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod.`;
}
