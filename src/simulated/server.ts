import type { IncomingMessage, ServerResponse } from 'node:http';
import { discovery } from './discovery.js';
import type { Faults } from './faults.js';
import type { DeleteOptions } from './lifecycle.js';
import { parseJson, parseObject, parseOptional, readBody, sendJson, sendStatus } from './http-util.js';
import type { PatchType, ResourceOperations, Reply } from './operations.js';
import { route, type ResourceRoute } from './routes.js';
import { bothSelectors, parseFieldSelector, parseLabelSelector, type Selector } from './selectors.js';
import { ApiError, badRequest, failure, injected } from './status.js';
import { wantsTable, toTable, tableRow } from './table.js';
import type { WatchHub } from './watch-hub.js';

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

export interface ServerDeps {
  ops: ResourceOperations;
  hub: WatchHub;
  faults: Faults;
  counts: Map<string, number>;
  logger?: Logger;
  /** host:port, for the discovery document's serverAddressByClientCIDRs. */
  address: () => string;
}

const HEALTH = new Set(['/healthz', '/livez', '/readyz']);
const PATCH_TYPES: Record<string, PatchType> = {
  'application/json-patch+json': 'json',
  'application/merge-patch+json': 'merge',
  'application/strategic-merge-patch+json': 'merge',
};

/** The node:http request listener of the simulated API server. */
export function createRequestHandler(deps: ServerDeps): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    handle(deps, req, res).catch((err: unknown) => answerError(deps, res, err));
  };
}

async function handle(deps: ServerDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://simulated');
  const outage = deps.faults.outage();
  if (outage === 'reset') return void req.socket.destroy();
  if (outage) return sendStatus(res, failure(503, 'the server is currently unable to handle the request', 'ServiceUnavailable'));
  if (req.method === 'GET' && HEALTH.has(url.pathname)) {
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    return void res.end('ok');
  }
  const doc = req.method === 'GET' ? discovery(url.pathname, deps.address()) : undefined;
  if (doc !== undefined) return sendJson(res, 200, doc);
  const target = route(req.method ?? 'GET', url.pathname, url.searchParams);
  const key = `${target.verb} ${target.def.plural}`;
  deps.counts.set(key, (deps.counts.get(key) ?? 0) + 1);
  const fault = deps.faults.take(target.verb, target.def.plural);
  if (fault === 'reset') return void req.socket.destroy();
  if (fault === 'timeout') return void req.resume(); // read and drop the body, never answer
  if (fault !== undefined) return sendStatus(res, injected(fault, target.def, target.verb, target.name ?? ''));
  if (target.verb === 'watch') return openWatch(deps, req, res, target, url.searchParams);
  const reply = await perform(deps.ops, req, target, url.searchParams);
  const body = wantsTable(req.headers.accept) && (target.verb === 'get' || target.verb === 'list')
    ? toTable(target.def, reply.body) : reply.body;
  sendJson(res, reply.code, body);
}

async function perform(ops: ResourceOperations, req: IncomingMessage, t: ResourceRoute, query: URLSearchParams): Promise<Reply> {
  switch (t.verb) {
    case 'get':
      return ops.get(t.def, t.namespace, t.name as string);
    case 'list':
      return ops.list(t.def, t.namespace, selectorOf(query));
    case 'create':
      return ops.create(t.def, t.namespace, parseObject(await readBody(req)));
    case 'delete':
      return ops.delete(t.def, t.namespace, t.name as string, deleteOptions(parseOptional(await readBody(req)), query));
    case 'deletecollection':
      return ops.deleteCollection(t.def, t.namespace, selectorOf(query), deleteOptions(parseOptional(await readBody(req)), query));
    case 'patch': {
      const type = patchType(req.headers['content-type']);
      return ops.patch(t.def, t.namespace, t.name as string, type, parseJson(await readBody(req)));
    }
    default:
      return ops.replace(t.def, t.namespace, t.name as string, parseObject(await readBody(req)));
  }
}

/** DeleteOptions from the body (kubectl, client-node) or the query (gracePeriodSeconds=...). */
function deleteOptions(body: Record<string, unknown> | undefined, query: URLSearchParams): DeleteOptions {
  const raw = body?.gracePeriodSeconds ?? numberParam(query, 'gracePeriodSeconds');
  if (raw === undefined || raw === null) return {};
  const grace = Number(raw);
  if (!Number.isInteger(grace) || grace < 0) throw badRequest(`invalid value for gracePeriodSeconds: "${String(raw)}"`);
  return { gracePeriodSeconds: grace };
}

function patchType(contentType: string | undefined): PatchType {
  const type = PATCH_TYPES[(contentType ?? '').split(';')[0].trim()];
  if (type) return type;
  throw new ApiError(failure(415, 'the body of the request was in an unknown format - accepted media types include: ' +
    Object.keys(PATCH_TYPES).join(', '), 'UnsupportedMediaType'));
}

function selectorOf(query: URLSearchParams, name?: string): Selector {
  const fields = [query.get('fieldSelector'), name !== undefined ? `metadata.name=${name}` : null].filter((f) => f).join(',');
  return bothSelectors(parseLabelSelector(query.get('labelSelector')), parseFieldSelector(fields));
}

function numberParam(query: URLSearchParams, key: string): number | undefined {
  const raw = query.get(key);
  if (raw === null || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw badRequest(`invalid value for ${key}: "${raw}"`);
  return n;
}

function openWatch(deps: ServerDeps, req: IncomingMessage, res: ServerResponse, t: ResourceRoute, query: URLSearchParams): void {
  const selector = selectorOf(query, t.name);
  const resourceVersion = numberParam(query, 'resourceVersion');
  const timeoutSeconds = numberParam(query, 'timeoutSeconds');
  const render = wantsTable(req.headers.accept) ? (obj: Parameters<typeof tableRow>[1]) => tableRow(t.def, obj) : undefined;
  const request = { def: t.def, namespace: t.namespace, selector, allowBookmarks: query.get('allowWatchBookmarks') === 'true', render };
  deps.hub.open(request, res, resourceVersion, timeoutSeconds);
}

function answerError(deps: ServerDeps, res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof ApiError) {
    sendStatus(res, err.status);
    return;
  }
  deps.logger?.warn(`simulated Kubernetes API: internal error: ${(err as Error)?.stack ?? String(err)}`);
  sendStatus(res, failure(500, `Internal error occurred: ${(err as Error)?.message ?? String(err)}`, 'InternalError'));
}
