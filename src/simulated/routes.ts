import { findResource, type ResourceDef } from './resources.js';
import { ApiError, failure } from './status.js';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'delete' | 'deletecollection' | 'patch' | 'update';

/** A request on a served resource, after URL and method are understood. */
export interface ResourceRoute {
  def: ResourceDef;
  namespace?: string;
  name?: string;
  verb: Verb;
}

export function pathNotFound(): ApiError {
  return new ApiError(failure(404, 'the server could not find the requested resource', 'NotFound', {}));
}

function methodNotAllowed(method: string): ApiError {
  return new ApiError(failure(405, `the server does not allow this method on the requested resource (${method})`, 'MethodNotAllowed', {}));
}

interface Target {
  def: ResourceDef;
  namespace?: string;
  name?: string;
  watch: boolean;
}

/** Splits `/api/v1/...` and `/apis/{group}/{version}/...` into resource, namespace and name. */
function parsePath(pathname: string): Target | undefined {
  const seg = pathname.split('/').filter((s) => s.length > 0).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (seg[0] === 'api' && seg.length >= 3) [group, version, rest] = ['', seg[1], seg.slice(2)];
  else if (seg[0] === 'apis' && seg.length >= 4) [group, version, rest] = [seg[1], seg[2], seg.slice(3)];
  else return undefined;
  // The deprecated `/watch/` path prefix, still accepted by the real server.
  const watch = rest[0] === 'watch';
  if (watch) rest = rest.slice(1);
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    const def = findResource(group, version, rest[2]);
    if (!def || !def.namespaced || rest.length > 4) return undefined;
    return { def, namespace: rest[1], name: rest[3], watch };
  }
  const def = findResource(group, version, rest[0]);
  if (!def || rest.length > 2 || (def.namespaced && rest.length === 2)) return undefined;
  return { def, name: rest[1], watch };
}

function verbOf(method: string, target: Target, query: URLSearchParams): Verb {
  const watchParam = query.get('watch');
  const named = target.name !== undefined;
  switch (method) {
    case 'GET':
      if (target.watch || watchParam === 'true' || watchParam === '1') return 'watch';
      return named ? 'get' : 'list';
    case 'POST':
      if (named || (target.def.namespaced && target.namespace === undefined)) throw methodNotAllowed(method);
      return 'create';
    case 'DELETE':
      return named ? 'delete' : 'deletecollection';
    case 'PATCH':
      if (!named) throw methodNotAllowed(method);
      return 'patch';
    case 'PUT':
      if (!named) throw methodNotAllowed(method);
      return 'update';
    default:
      throw methodNotAllowed(method);
  }
}

/** Understands a resource request, or throws the 404/405 Status the real server would answer. */
export function route(method: string, pathname: string, query: URLSearchParams): ResourceRoute {
  const target = parsePath(pathname);
  if (!target) throw pathNotFound();
  return { def: target.def, namespace: target.namespace, name: target.name, verb: verbOf(method, target, query) };
}
