import type { ResourceDef } from './resources.js';

/** A metav1.Status, shaped exactly as the real API server sends it (clients parse `code` and `reason`). */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; uid?: string; causes?: Array<Record<string, string>> };
  code: number;
}

/** Thrown by request handlers; the router answers it with its Status and HTTP code. */
export class ApiError extends Error {
  constructor(readonly status: Status) {
    super(status.message);
  }
}

const REASONS: Record<number, string> = {
  400: 'BadRequest', 401: 'Unauthorized', 403: 'Forbidden', 404: 'NotFound', 405: 'MethodNotAllowed',
  409: 'Conflict', 410: 'Expired', 415: 'UnsupportedMediaType', 422: 'Invalid', 429: 'TooManyRequests',
  500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout',
};

export function failure(code: number, message: string, reason?: string, details?: Status['details']): Status {
  const status: Status = {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message,
    reason: reason ?? REASONS[code] ?? 'Unknown', code,
  };
  if (details) status.details = details;
  return status;
}

function describe(def: ResourceDef, name: string): NonNullable<Status['details']> {
  return def.group ? { name, group: def.group, kind: def.plural } : { name, kind: def.plural };
}

function qualified(def: ResourceDef): string {
  return def.group ? `${def.plural}.${def.group}` : def.plural;
}

export function notFound(def: ResourceDef, name: string): ApiError {
  return new ApiError(failure(404, `${qualified(def)} "${name}" not found`, 'NotFound', describe(def, name)));
}

export function alreadyExists(def: ResourceDef, name: string): ApiError {
  return new ApiError(failure(409, `${qualified(def)} "${name}" already exists`, 'AlreadyExists', describe(def, name)));
}

export function conflict(def: ResourceDef, name: string, why: string): ApiError {
  const message = `Operation cannot be fulfilled on ${qualified(def)} "${name}": ${why}`;
  return new ApiError(failure(409, message, 'Conflict', describe(def, name)));
}

export function forbidden(def: ResourceDef, name: string, why: string, causes?: Array<Record<string, string>>): ApiError {
  const details = causes ? { ...describe(def, name), causes } : describe(def, name);
  return new ApiError(failure(403, `${qualified(def)} "${name}" is forbidden: ${why}`, 'Forbidden', details));
}

/** 422 as the API server words it: the Kind (not the plural) names the object, and each cause names its field. */
export function invalid(def: ResourceDef, name: string, field: string, causeReason: string, detail: string): ApiError {
  const message = `${def.kind} "${name}" is invalid: ${field}: ${detail}`;
  const causes = [{ reason: causeReason, message: detail, field }];
  const details = def.group ? { name, group: def.group, kind: def.kind, causes } : { name, kind: def.kind, causes };
  return new ApiError(failure(422, message, 'Invalid', details));
}

export function badRequest(message: string): ApiError {
  return new ApiError(failure(400, message, 'BadRequest'));
}

/** The Status a watch ends with when asked to start before the retained history: code 410, reason Expired. */
export function tooOld(requested: number, oldest: number): Status {
  return failure(410, `too old resource version: ${requested} (${oldest})`, 'Expired');
}

/** A Status for an injected failure of the given code, worded like the real server's answer for that code. */
export function injected(code: number, def: ResourceDef | undefined, verb: string, name = ''): Status {
  const plural = def ? qualified(def) : 'resource';
  switch (code) {
    case 403:
      return failure(403, `${plural} "${name}" is forbidden: User "system:anonymous" cannot ${verb} resource "${def?.plural ?? ''}"`,
        'Forbidden', def ? describe(def, name) : undefined);
    case 404:
      return failure(404, `${plural} "${name}" not found`, 'NotFound', def ? describe(def, name) : undefined);
    case 409:
      return failure(409, `Operation cannot be fulfilled on ${plural} "${name}": the object has been modified; ` +
        'please apply your changes to the latest version and try again', 'Conflict', def ? describe(def, name) : undefined);
    case 422:
      return failure(422, `${def?.kind ?? 'Object'} "${name}" is invalid: injected fault`, 'Invalid', def ? { name, kind: def.kind } : undefined);
    case 500:
      return failure(500, 'Internal error occurred: injected fault', 'InternalError', { causes: [{ message: 'injected fault' }] });
    default:
      return failure(code, `injected fault (${code})`);
  }
}

export function success(def: ResourceDef, name: string, uid?: string): Record<string, unknown> {
  return {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success',
    details: { ...describe(def, name), ...(uid ? { uid } : {}) },
  };
}
