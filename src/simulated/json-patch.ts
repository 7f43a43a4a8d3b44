import { badRequest, failure, ApiError } from './status.js';

/** RFC 6902 JSON Patch (client-node's default patch type) and RFC 7386 JSON merge patch, applied to plain JSON. */

type Json = unknown;
type Container = Record<string, Json> | Json[];

interface Operation {
  op: string;
  path: string;
  from?: string;
  value?: Json;
}

/** RFC 7386: objects merge key by key, null deletes, anything else replaces. */
export function mergePatch(target: Json, patch: Json): Json {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const base = target !== null && typeof target === 'object' && !Array.isArray(target) ? { ...(target as object) } : {};
  const out = base as Record<string, Json>;
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key], value);
  }
  return out;
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw badRequest(`invalid JSON pointer "${path}"`);
  return path.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Walks to the parent of the pointer's last token, which must exist. */
function parentOf(doc: Json, tokens: string[]): { parent: Container; key: string } {
  if (tokens.length === 0) throw unprocessable('an operation on the whole object is not supported');
  let cur = doc;
  for (const token of tokens.slice(0, -1)) {
    if (cur === null || typeof cur !== 'object') throw unprocessable(`path /${tokens.join('/')} does not exist`);
    cur = Array.isArray(cur) ? cur[Number(token)] : (cur as Record<string, Json>)[token];
  }
  if (cur === null || typeof cur !== 'object') throw unprocessable(`path /${tokens.join('/')} does not exist`);
  return { parent: cur as Container, key: tokens[tokens.length - 1] };
}

function unprocessable(message: string): ApiError {
  return new ApiError(failure(422, `the server rejected our request due to an error in our request: ${message}`, 'Invalid'));
}

function read(doc: Json, path: string): Json {
  const tokens = pointer(path);
  if (tokens.length === 0) return doc;
  const { parent, key } = parentOf(doc, tokens);
  const value = Array.isArray(parent) ? parent[Number(key)] : parent[key];
  if (value === undefined) throw unprocessable(`path ${path} does not exist`);
  return value;
}

function remove(doc: Json, path: string): Json {
  const { parent, key } = parentOf(doc, pointer(path));
  const value = read(doc, path);
  if (Array.isArray(parent)) parent.splice(Number(key), 1);
  else delete parent[key];
  return value;
}

function add(doc: Json, path: string, value: Json, replace: boolean): void {
  const { parent, key } = parentOf(doc, pointer(path));
  if (Array.isArray(parent)) {
    const index = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(index) || index < 0 || index > parent.length) throw unprocessable(`index ${key} out of range`);
    parent.splice(index, replace ? 1 : 0, structuredClone(value));
  } else {
    parent[key] = structuredClone(value);
  }
}

/** Applies a JSON Patch to a copy of `doc`; a failed `test` or a missing path is a 422, as the real server answers. */
export function jsonPatch(doc: Json, ops: unknown): Json {
  if (!Array.isArray(ops)) throw badRequest('a JSON patch must be an array of operations');
  const out = structuredClone(doc);
  for (const op of ops as Operation[]) {
    switch (op.op) {
      case 'add': add(out, op.path, op.value, false); break;
      case 'replace': read(out, op.path); add(out, op.path, op.value, true); break;
      case 'remove': remove(out, op.path); break;
      case 'move': add(out, op.path, remove(out, op.from ?? ''), false); break;
      case 'copy': add(out, op.path, read(out, op.from ?? ''), false); break;
      case 'test':
        if (JSON.stringify(read(out, op.path)) !== JSON.stringify(op.value)) throw unprocessable(`test failed at ${op.path}`);
        break;
      default: throw badRequest(`unknown JSON patch operation "${String(op?.op)}"`);
    }
  }
  return out;
}
