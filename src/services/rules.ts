/** The catalogue's formats, shared by inputs (class-validator) and services. */

/** RFC 1123 label that starts with a letter (the original's namespace prefix rule). */
export const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** RFC 1123 subdomain: dot-separated labels of [a-z0-9-], each starting and ending alphanumeric. */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kubernetes quantity for memory: a positive number with an optional binary or decimal suffix. */
export const MEMORY_QUANTITY = /^(?=.*[1-9])\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

const QUANTITY_FACTORS: Record<string, number> = {
  '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** Bytes of a memory quantity that matches MEMORY_QUANTITY; NaN otherwise. */
export function memoryBytes(quantity: string): number {
  const m = /^(\d+(?:\.\d+)?)([A-Za-z]*)$/.exec(quantity);
  const factor = m ? QUANTITY_FACTORS[m[2]] : undefined;
  return m && factor !== undefined ? Number(m[1]) * factor : Number.NaN;
}

/**
 * The smallest memory request KubeVirt admits: its VMI create admitter refuses requests below 1M
 * (kubevirt/kubevirt pkg/virt-api/webhooks/validating-webhook/admitters/vmi-create-admitter.go).
 */
export const MIN_MEMORY_BYTES = 1e6;

/** Something that is not only white space. */
export const NOT_BLANK = /\S/;

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]{1,5})?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*';
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';

/**
 * An OCI/Docker image reference as the distribution spec's grammar defines it:
 * [domain[:port]/]path[/path...][:tag][@digest], e.g. quay.io/containerdisks/fedora:40.
 */
export const IMAGE_REFERENCE = new RegExp(
  `^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::${TAG})?(?:@${DIGEST})?$`,
);

export const LIMITS = {
  name: 32,
  description: 128,
  url: 256,
  namespacePrefix: 32,
  vmName: 63,
  pageTitle: 128,
  pageContent: 100_000,
  cpuCoresMax: 64,
  lifetimeMinutesMax: 60 * 24 * 365,
} as const;
