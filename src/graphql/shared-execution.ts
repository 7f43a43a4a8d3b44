import { createSourceEventStream, execute, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Context } from './context.js';

type Results = Map<string, Promise<ExecutionResult> | ExecutionResult>;

/**
 * graphql-js executes a subscription's selection once per event per subscriber. Events here are
 * shared objects (one snapshot for every listener), so subscribers with the same document,
 * variables and viewer get the same result: it is executed once per event and shared.
 */
const byEvent = new WeakMap<object, Results>();

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

function executeShared(args: ExecutionArgs, event: unknown): Promise<ExecutionResult> | ExecutionResult {
  if (typeof event !== 'object' || event === null) return execute({ ...args, rootValue: event });
  let results = byEvent.get(event);
  if (!results) byEvent.set(event, (results = new Map()));
  const key = `${documentId(args.document)}\n${args.operationName ?? ''}\n${JSON.stringify(args.variableValues ?? {})}\n${viewerKey(args.contextValue)}`;
  let result = results.get(key);
  if (!result) results.set(key, (result = execute({ ...args, rootValue: event })));
  return result;
}

/** Drop-in for graphql-js `subscribe` that shares each event's execution among equal subscribers. */
export async function sharedSubscribe(args: ExecutionArgs): Promise<AsyncGenerator<ExecutionResult> | ExecutionResult> {
  const stream = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in stream)) return stream as ExecutionResult;
  const source = stream as AsyncIterator<unknown> & AsyncIterable<unknown>;
  const mapped: AsyncGenerator<ExecutionResult> = {
    async next() {
      const item = await source.next();
      return item.done ? { value: undefined, done: true } : { value: await executeShared(args, item.value), done: false };
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
  } as AsyncGenerator<ExecutionResult>;
  return mapped;
}
