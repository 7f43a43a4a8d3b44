import type { KubeObject, ResourceDef } from './resources.js';
import { invalid } from './status.js';

const LABEL_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const SUBDOMAIN_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE_RE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME_RE = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;

// The API server's own wording, which clients and people grep for.
const LABEL_MSG = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start " +
  "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const SUBDOMAIN_MSG = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must " +
  "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is " +
  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/** Namespaces need a DNS-1123 label (they become DNS names); the other kinds here a DNS-1123 subdomain. */
export function validateName(def: ResourceDef, name: unknown): void {
  if (name === undefined || name === '') {
    throw invalid(def, '', 'metadata.name', 'FieldValueRequired', 'Required value: name or generateName is required');
  }
  const text = String(name);
  const label = def.plural === 'namespaces';
  const max = label ? 63 : 253;
  if (typeof name !== 'string' || !(label ? LABEL_RE : SUBDOMAIN_RE).test(text)) {
    throw invalid(def, text, 'metadata.name', 'FieldValueInvalid', `Invalid value: "${text}": ${label ? LABEL_MSG : SUBDOMAIN_MSG}`);
  }
  if (text.length > max) {
    throw invalid(def, text, 'metadata.name', 'FieldValueInvalid', `Invalid value: "${text}": must be no more than ${max} characters`);
  }
}

function validLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  if (!name || name.length > 63 || !LABEL_NAME_RE.test(name)) return false;
  return prefix === undefined || (prefix.length <= 253 && SUBDOMAIN_RE.test(prefix));
}

/** Label keys and values are checked as the real server does, so that a bad label fails here and not only in production. */
export function validateLabels(def: ResourceDef, obj: KubeObject): void {
  const labels = obj.metadata.labels;
  if (labels === undefined) return;
  const name = obj.metadata.name ?? '';
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw invalid(def, name, 'metadata.labels', 'FieldValueInvalid', 'Invalid value: labels must be a map of strings');
  }
  for (const [key, value] of Object.entries(labels)) {
    if (!validLabelKey(key)) {
      throw invalid(def, name, 'metadata.labels', 'FieldValueInvalid', `Invalid value: "${key}": name part must consist of ` +
        "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character");
    }
    if (typeof value !== 'string' || value.length > 63 || !LABEL_VALUE_RE.test(value)) {
      throw invalid(def, name, 'metadata.labels', 'FieldValueInvalid', `Invalid value: "${String(value)}": a valid label ` +
        "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an " +
        'alphanumeric character');
    }
  }
}
