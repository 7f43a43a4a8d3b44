import { createSourceEventStream, execute, GraphQLError, type ExecutionArgs, type ExecutionResult, type FormattedExecutionResult } from 'graphql';
import type { WebSocket } from 'ws';
import type { Context } from '../graphql/context.js';
import { reportAndMask } from '../graphql/errors.js';
import type { Fanout, PayloadOf } from './fanout.js';
import type { InstanceStream } from '../services/lab-instance.stream.js';

/** Where a graphql-transport-ws subscription's messages may be written directly (see Fanout). */
export const PUSH_TARGET = Symbol('push target');

export interface PushTarget {
  fanout: Fanout;
  socket: WebSocket;
  /** The subscription's id in the protocol. */
  id: string;
}

export type SubscribeArgs = ExecutionArgs & { [PUSH_TARGET]?: PushTarget };

/** Errors reported and masked as on HTTP, in the scope (logger, request id) of the operation's context. */
export const formatResult = (result: ExecutionResult, context: Context): FormattedExecutionResult =>
  result.errors ? { ...result, errors: result.errors.map((e) => reportAndMask(context, e)) } : result;

/** A subscription's results, each formatted as formatResult does (the legacy protocol sends them as they come). */
export function formatStream(stream: AsyncGenerator<ExecutionResult>, context: Context): AsyncIterableIterator<FormattedExecutionResult> {
  return {
    next: async () => {
      const item = await stream.next();
      return item.done ? { value: undefined, done: true } : { value: formatResult(item.value, context), done: false };
    },
    return: async () => {
      await stream.return(undefined);
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

interface Shared {
  result: Promise<ExecutionResult> | ExecutionResult;
  json?: Promise<string> | string;
}

/**
 * graphql-js executes a subscription's selection once per event per subscriber. Events here are
 * shared objects (one snapshot for every listener), so subscribers with the same document,
 * variables and viewer get the same result: it is executed (and serialised) once per event and shared.
 */
const byEvent = new WeakMap<object, Map<string, Shared>>();

function viewerKey(context: unknown): string {
  const user = (context as Context | undefined)?.viewer?.user;
  return user ? `${user.id}:${user.isAdmin ? 'a' : ''}` : '-';
}

const documentIds = new WeakMap<object, number>();
let nextDocumentId = 0;
function documentId(document: object): number {
  let id = documentIds.get(document);
  if (id === undefined) documentIds.set(document, (id = nextDocumentId++));
  return id;
}

/** What makes two subscriptions' results equal for the same event; computed once per subscription. */
function executionKey(args: ExecutionArgs): string {
  return `${documentId(args.document)}\n${args.operationName ?? ''}\n${JSON.stringify(args.variableValues ?? {})}\n${viewerKey(args.contextValue)}`;
}

function shared(args: ExecutionArgs, key: string, event: object): Shared {
  let results = byEvent.get(event);
  if (!results) byEvent.set(event, (results = new Map()));
  let entry = results.get(key);
  if (!entry) results.set(key, (entry = { result: execute({ ...args, rootValue: event }) }));
  return entry;
}

function sharedJson(args: ExecutionArgs, key: string, event: object): Promise<string> | string {
  const entry = shared(args, key, event);
  if (entry.json === undefined) {
    const { result } = entry;
    const stringify = (r: ExecutionResult) => JSON.stringify(formatResult(r, args.contextValue as Context));
    if (result instanceof Promise) {
      const json = result.then(stringify, (err: Error) => stringify({ errors: [new GraphQLError(err.message, { originalError: err })] }));
      entry.json = json;
      void json.then((text) => (entry.json = text)); // later readers get the string itself
    } else {
      entry.json = stringify(result);
    }
  }
  return entry.json;
}

/** Each event's `next` payload, as JSON, for subscriptions with these arguments. */
export function payloadsOf(args: ExecutionArgs): PayloadOf {
  const key = executionKey(args);
  return (event) => sharedJson(args, key, event);
}

const isInstanceStream = (stream: object): stream is InstanceStream =>
  typeof (stream as Partial<InstanceStream>).take === 'function' && typeof (stream as Partial<InstanceStream>).onPending === 'function';

/**
 * Drop-in for graphql-js `subscribe` that shares each event's execution among equal subscribers.
 * With a push target (graphql-transport-ws), the fan-out writes the messages; otherwise (the legacy
 * protocol) the returned iterator yields each event's shared result.
 */
export async function sharedSubscribe(args: SubscribeArgs): Promise<AsyncGenerator<ExecutionResult> | ExecutionResult> {
  const stream = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in stream)) return stream as ExecutionResult;
  const target = args[PUSH_TARGET];
  if (target && isInstanceStream(stream)) return target.fanout.attach(target.socket, target.id, stream, payloadsOf(args));
  const key = executionKey(args);
  const source = stream as AsyncIterator<unknown> & AsyncIterable<unknown>;
  const resultOf = (event: unknown) =>
    typeof event === 'object' && event !== null ? shared(args, key, event).result : execute({ ...args, rootValue: event });
  const mapped = {
    async next(): Promise<IteratorResult<ExecutionResult, undefined>> {
      const item = await source.next();
      return item.done ? { value: undefined, done: true } : { value: await resultOf(item.value), done: false };
    },
    async return() {
      await source.return?.();
      return { value: undefined, done: true };
    },
    async throw(err: unknown) {
      await source.return?.();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  return mapped as unknown as AsyncGenerator<ExecutionResult>;
}
