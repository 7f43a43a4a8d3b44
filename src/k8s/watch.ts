import { request as httpRequest, STATUS_CODES, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';

export type WatchCallback = (type: string, object: unknown) => void;
/** Called once: null when the server ended the watch, the error otherwise. */
export type WatchDone = (err: Error | null) => void;

export class WatchHttpError extends Error {
  constructor(readonly statusCode: number, message: string) {
    super(message);
  }
}

/**
 * Splits a watch response into its newline-delimited JSON events, chunk by chunk. A line cut by a
 * chunk boundary waits for the rest; a line that is not JSON is skipped, as client-node does.
 */
export function eventLines(onEvent: WatchCallback): (chunk: string) => void {
  let rest = '';
  return (chunk) => {
    const text = rest ? rest + chunk : chunk;
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      const line = text.slice(start, end);
      start = end + 1;
      let event: { type?: string; object?: unknown };
      try {
        event = JSON.parse(line);
      } catch {
        continue;
      }
      if (event && typeof event.type === 'string') onEvent(event.type, event.object);
    }
    rest = text.slice(start);
  };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;

/** Where the string token that opens at `start` (a quote) ends (its closing quote), or -1. */
function stringEnd(text: string, start: number): number {
  for (let end = text.indexOf('"', start + 1); end !== -1; end = text.indexOf('"', end + 1)) {
    let slashes = 0;
    while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return end;
  }
  return -1;
}

/** A string token's text without its quotes, escapes resolved (rare in names: only then JSON.parse). */
function stringValue(text: string, start: number, end: number): string {
  const raw = text.slice(start + 1, end);
  return raw.includes('\\') ? (JSON.parse(text.slice(start, end + 1)) as string) : raw;
}

/**
 * The `namespace/name` of the object of one watch event line (`object.metadata`), read by scanning
 * the line's text up to the end of that metadata, without building any of it: undefined when the line
 * has no such object with a name (BOOKMARK and ERROR events, or text that is not shaped so). Every
 * duplicate key is read as JSON.parse reads it, the last one winning, except `object` and `metadata`
 * themselves (an API server never repeats a key).
 */
export function eventObjectKey(line: string): string | undefined {
  let depth = 0; // containers open
  let onPath = 0; // how many of them are, in turn, the event, its object and the object's metadata
  let key: string | undefined; // the key of the value that comes next, in the innermost object
  let name: string | undefined;
  let namespace: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(line, i);
      if (end === -1) return undefined;
      let next = end + 1;
      while (line.charCodeAt(next) <= 0x20 && next < line.length) next++;
      if (line.charCodeAt(next) === COLON) {
        key = stringValue(line, i, end);
        i = next;
      } else {
        if (onPath === 3 && depth === 3 && key === 'name') name = stringValue(line, i, end);
        else if (onPath === 3 && depth === 3 && key === 'namespace') namespace = stringValue(line, i, end);
        i = end;
      }
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      const entersPath =
        c === OPEN_OBJECT && onPath === depth && (depth === 0 || (depth === 1 && key === 'object') || (depth === 2 && key === 'metadata'));
      depth++;
      if (entersPath) onPath = depth;
      key = undefined;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      if (onPath === 3 && depth === 3) return name === undefined ? undefined : `${namespace ?? ''}/${name}`;
      if (onPath === depth) onPath--;
      depth--;
      key = undefined;
    }
  }
  return undefined;
}

type WatchEvent = { type?: string; object?: { metadata?: { name?: string; namespace?: string } } };

function parseEvent(line: string): WatchEvent | undefined {
  try {
    return JSON.parse(line) as WatchEvent;
  } catch {
    return undefined;
  }
}

/**
 * Like eventLines, for a consumer that keeps only the latest state of each object (an informer's
 * cache, a level-based reconciler): of the events of one chunk about the same object, only the last
 * is parsed and handed on, the ones it supersedes are skipped unread. A burst (an object changed
 * several times in a row, as KubeVirt's controllers do while a VM starts) arrives as few chunks of
 * many events, and parsing them was the largest part of reacting to it. Events without an object
 * name (BOOKMARK, ERROR) always pass, in order. Should the last event of an object not parse, or
 * name another object than its text seemed to, the whole chunk is handed on as eventLines would.
 */
export function latestEventLines(onEvent: WatchCallback): (chunk: string) => void {
  let rest = '';
  return (chunk) => {
    const text = rest ? rest + chunk : chunk;
    const lines: string[] = [];
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      lines.push(text.slice(start, end));
      start = end + 1;
    }
    rest = text.slice(start);
    const keys = lines.map(eventObjectKey);
    const last = new Map<string, number>();
    keys.forEach((key, i) => key !== undefined && last.set(key, i));
    let events: Array<WatchEvent | undefined> = [];
    for (let i = 0; i < lines.length; i++) {
      const key = keys[i];
      if (key !== undefined && last.get(key) !== i) continue;
      const event = parseEvent(lines[i]);
      const meta = event?.object?.metadata;
      if (key !== undefined && (typeof event?.type !== 'string' || !meta || `${meta.namespace ?? ''}/${meta.name}` !== key)) {
        events = lines.map(parseEvent); // not what the scan read: every event, as eventLines
        break;
      }
      events.push(event);
    }
    for (const event of events) if (event && typeof event.type === 'string') onEvent(event.type, event.object);
  };
}

/**
 * One watch request: GET `path` with watch=true, authenticated from the KubeConfig as client-node's
 * own requests are, the events handed to `onEvent` as they arrive. The same contract as client-node's
 * Watch.watch(): it resolves with a controller once the request is answered (aborting it ends the
 * watch), and every failure, a non-200 answer included, goes to `done` rather than being thrown.
 * Unlike it, it reads the body without a readline interface over a stream adapter, which in a
 * burst of thousands of events cost as much as parsing them. With `latestOnly`, an event superseded by
 * a later one about the same object in the same chunk is skipped (latestEventLines).
 */
export async function watch(
  kubeConfig: KubeConfig,
  path: string,
  query: Record<string, string | number | boolean | undefined>,
  onEvent: WatchCallback,
  done: WatchDone,
  reading: { latestOnly?: boolean } = {},
): Promise<AbortController> {
  const controller = new AbortController();
  let finished = false;
  const finish = (err: Error | null) => {
    if (finished) return;
    finished = true;
    controller.abort();
    done(err);
  };
  try {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('No currently active cluster');
    const url = new URL(cluster.server + path);
    url.searchParams.set('watch', 'true');
    for (const [key, value] of Object.entries(query)) if (value !== undefined) url.searchParams.set(key, String(value));
    const options: RequestOptions = { method: 'GET', headers: { Accept: 'application/json' } };
    await kubeConfig.applyToHTTPSOptions(options as never);
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const req = send(url, { ...options, signal: controller.signal }, resolve);
      req.on('error', reject);
      req.end();
    });
    if (response.statusCode !== 200) {
      response.resume();
      const status = response.statusCode ?? 500;
      throw new WatchHttpError(status, response.statusMessage || STATUS_CODES[status] || 'Internal Server Error');
    }
    response.setEncoding('utf8');
    response.on('data', (reading.latestOnly ? latestEventLines : eventLines)(onEvent));
    response.on('end', () => finish(null));
    response.on('error', (err) => finish(err));
    response.on('close', () => finish(null));
  } catch (err) {
    finish(err as Error);
  }
  return controller;
}
