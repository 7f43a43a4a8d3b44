import type { Loose } from './resources.js';
import type { KubeObject } from './resources.js';
import { ApiError, failure } from './status.js';
import { formatQuantity, parseQuantity, QUANTITY_PATTERN } from './quantity.js';
import { timestamp } from './store.js';

/**
 * What KubeVirt's virt-api does to a VirtualMachineInstance on its way into the API server: the
 * mutating webhook's defaults and the validating webhook's refusals. Only what the simulation needs
 * is modelled; the webhook's spec defaults (machine type, firmware UUID, CPU model, interfaces...) are not.
 */

/** staging/src/kubevirt.io/api/core/v1/types.go: VirtualMachineInstanceFinalizer. */
export const VMI_FINALIZER = 'kubevirt.io/foregroundDeleteVirtualMachine';
/** The name before KubeVirt qualified it (types.go: DeprecatedVirtualMachineInstanceFinalizer); still removed the same way. */
export const DEPRECATED_VMI_FINALIZER = 'foregroundDeleteVirtualMachine';
/** pkg/virt-operator/resource/generate/components/webhooks.go: the validating webhook for VMI creation. */
const CREATE_VALIDATOR = 'virtualmachineinstances-create-validator.kubevirt.io';
/** pkg/util/util.go NonRootUID: the user virt-launcher runs the VM as unless the Root feature gate is on. */
const NON_ROOT_UID = 107;

/**
 * follows kubevirt/kubevirt pkg/virt-api/webhooks/mutating-webhook/mutators/vmi-mutator.go (Mutate, on
 * create): the foreground-delete finalizer is appended, the phase set to Pending "to avoid blank status"
 * with its transition timestamp, and (markAsNonroot, Root feature gate off by default) runtimeUser 107.
 * The VMI CRD has no status subresource, so this status is what the create stores.
 */
export function mutateNewVmi(vmi: KubeObject): void {
  vmi.metadata.finalizers = [...asStrings(vmi.metadata.finalizers), VMI_FINALIZER];
  vmi.status = {
    phase: 'Pending',
    phaseTransitionTimestamps: [{ phase: 'Pending', phaseTransitionTimestamp: timestamp() }],
    runtimeUser: NON_ROOT_UID,
  };
}

/**
 * follows kubevirt/kubevirt pkg/virt-api/webhooks/validating-webhook/admitters/vmi-create-admitter.go
 * (validateMemoryRequestsNegativeOrNull, ValidateVirtualMachineInstanceMandatoryFields), answered as
 * pkg/util/webhooks/webhooks.go ToAdmissionResponse words it (causes joined, 422 Invalid) and as the API
 * server wraps a webhook's denial (staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/errors/
 * statuserror.go ToStatusErr, v1.30: 'admission webhook "<name>" denied the request: <message>').
 * Before the webhook, the CRD's structural schema refuses a request quantity that is not a quantity.
 */
export function admitNewVmi(vmi: KubeObject): void {
  const name = vmi.metadata.name ?? '';
  const spec = (vmi.spec ?? {}) as Loose;
  const requests = (spec.domain?.resources?.requests ?? {}) as Record<string, unknown>;
  const limits = (spec.domain?.resources?.limits ?? {}) as Record<string, unknown>;
  for (const [kind, list] of [['requests', requests], ['limits', limits]] as const) {
    for (const [resource, value] of Object.entries(list)) {
      if (parseQuantity(value) === undefined) throw schemaInvalid(name, `spec.domain.resources.${kind}.${resource}`, value);
    }
  }
  const causes: Array<Record<string, string>> = [];
  const field = 'spec.domain.resources.requests.memory';
  const memory = parseQuantity(requests.memory);
  if (memory && memory.value < 0) {
    causes.push({ type: 'FieldValueInvalid', message: `${field} '${formatQuantity(memory)}': must be greater than or equal to 0.`, field });
  } else if (memory && memory.value > 0 && memory.value < 1e6) {
    causes.push({ type: 'FieldValueInvalid', message: `${field} '${formatQuantity(memory)}': must be greater than or equal to 1M.`, field });
  }
  const guest = spec.domain?.memory?.guest;
  const hugepages = spec.domain?.memory?.hugepages;
  if ((memory === undefined || Math.ceil(memory.value) === 0) && guest === undefined && hugepages === undefined) {
    causes.push({
      type: 'FieldValueRequired',
      message: "no memory requested, at least one of 'spec.domain.memory.guest', 'spec.domain.memory.hugepages.pageSize' " +
        "or 'spec.domain.resources.requests.memory' must be set",
    });
  }
  if (causes.length === 0) return;
  const message = `admission webhook "${CREATE_VALIDATOR}" denied the request: ${causes.map((c) => c.message).join(', ')}`;
  throw new ApiError(failure(422, message, 'Invalid', { causes }));
}

/** The API server's answer to a CRD field that breaks its schema's pattern (apiextensions-apiserver validation). */
function schemaInvalid(name: string, field: string, value: unknown): ApiError {
  const detail = `Invalid value: "${String(value)}": ${field} in body should match '${QUANTITY_PATTERN}'`;
  const message = `VirtualMachineInstance.kubevirt.io "${name}" is invalid: ${field}: ${detail}`;
  const causes = [{ reason: 'FieldValueInvalid', message: detail, field }];
  return new ApiError(failure(422, message, 'Invalid', { name, group: 'kubevirt.io', kind: 'VirtualMachineInstance', causes }));
}

function asStrings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}
