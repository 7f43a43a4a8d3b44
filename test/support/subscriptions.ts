import { ApolloClient, InMemoryCache } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import { createClient, type Client } from 'graphql-ws';
import { SubscriptionClient } from 'subscriptions-transport-ws';
import WebSocket from 'ws';

export interface Received<T> {
  events: T[];
  errors: unknown[];
  completed: boolean;
  /** Resolves once the predicate holds for the events so far (checked on every event). */
  until(predicate: (events: T[]) => boolean, timeoutMs?: number): Promise<T[]>;
  close(): void;
}

function collector<T>(close: () => void): Received<T> & { push(e: T): void; fail(e: unknown): void; complete(): void } {
  const waiters = new Set<() => void>();
  const r = {
    events: [] as T[],
    errors: [] as unknown[],
    completed: false,
    close,
    push(e: T) {
      r.events.push(e);
      for (const w of waiters) w();
    },
    fail(e: unknown) {
      r.errors.push(e);
      for (const w of waiters) w();
    },
    complete() {
      r.completed = true;
      for (const w of waiters) w();
    },
    until(predicate: (events: T[]) => boolean, timeoutMs = 10_000) {
      return new Promise<T[]>((resolve, reject) => {
        const check = () => {
          if (predicate(r.events)) {
            cleanup();
            resolve(r.events);
          } else if (r.errors.length || r.completed) {
            cleanup();
            reject(new Error(`subscription ended before the condition held: ${JSON.stringify({ events: r.events, errors: r.errors })}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out; events so far: ${JSON.stringify(r.events)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
  return r;
}

const auth = (token?: string) => (token ? { authorization: `Bearer ${token}` } : {});

/** The graphql-ws client (subprotocol graphql-transport-ws). */
export function graphqlWsClient(wsUrl: string, token?: string): Client {
  return createClient({ url: wsUrl, webSocketImpl: WebSocket, connectionParams: auth(token), retryAttempts: 0, lazy: true });
}

export function subscribeGraphqlWs<T, V>(client: Client, doc: TypedDocumentNode<T, V>, variables?: V): Received<T> {
  let dispose = () => {};
  const c = collector<T>(() => dispose());
  dispose = client.subscribe(
    { query: print(doc), variables: variables as Record<string, unknown> },
    {
      next: (result) => (result.errors ? c.fail(result.errors) : c.push(result.data as T)),
      error: (err) => c.fail(err),
      complete: () => c.complete(),
    },
  );
  return c;
}

/** The legacy subscriptions-transport-ws client (subprotocol graphql-ws), as GraphQL Playground uses. */
export function subscribeLegacy<T, V>(wsUrl: string, token: string | undefined, doc: TypedDocumentNode<T, V>, variables?: V) {
  const client = new SubscriptionClient(wsUrl, { connectionParams: auth(token), reconnect: false }, WebSocket);
  // Without reconnection, this client neither completes nor fails its operations when the server
  // closes the connection: it only reports the disconnection.
  const c = Object.assign(collector<T>(() => client.close()), { disconnected: false });
  client.onDisconnected(() => (c.disconnected = true));
  client.request({ query: print(doc), variables: variables as Record<string, unknown> }).subscribe({
    next: (result) => (result.errors ? c.fail(result.errors) : c.push(result.data as T)),
    error: (err) => c.fail(err),
    complete: () => c.complete(),
  });
  return c;
}

/** Apollo Client with its GraphQLWsLink, as a front end would use it. */
export function subscribeApollo<T, V>(wsUrl: string, token: string, doc: TypedDocumentNode<T, V>, variables?: V) {
  const wsClient = graphqlWsClient(wsUrl, token);
  const apollo = new ApolloClient({ link: new GraphQLWsLink(wsClient), cache: new InMemoryCache() });
  const held: { subscription?: { unsubscribe(): void } } = {};
  const c = collector<T>(() => {
    held.subscription?.unsubscribe();
    void wsClient.dispose();
  });
  held.subscription = apollo.subscribe({ query: doc, variables: variables as never }).subscribe({
    next: (result) => (result.error ? c.fail(result.error) : c.push(result.data as T)),
    error: (err) => c.fail(err),
    complete: () => c.complete(),
  });
  return c;
}
