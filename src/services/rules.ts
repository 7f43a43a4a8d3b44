/** The catalogue's formats, shared by inputs (class-validator) and services. */

/** RFC 1123 label that starts with a letter (the original's namespace prefix rule). */
export const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/** RFC 1123 subdomain: dot-separated labels of [a-z0-9-], each starting and ending alphanumeric. */
export const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Kubernetes quantity for memory: a positive number with an optional binary or decimal suffix. */
export const MEMORY_QUANTITY = /^(?=.*[1-9])\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

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
