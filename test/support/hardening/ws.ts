/**
 * WebSocket clients for the hardening tests, at the level of protocol messages: a raw socket that
 * records every message and its close, and one-shot operations over an open graphql-ws client.
 */
import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print } from 'graphql';
import type { Client, ExecutionResult } from 'graphql-ws';
import WebSocket from 'ws';


/** A message as the server sent it: tests read it like JSON, field by field. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped wire data, read by tests
export type Json = any;

export type Subprotocol = 'graphql-transport-ws' | 'graphql-ws';

/** The legacy protocol (subscriptions-transport-ws) and graphql-ws name their messages differently. */
export const MESSAGES = {
  'graphql-transport-ws': { init: 'connection_init', ack: 'connection_ack', start: 'subscribe', data: 'next', error: 'error', complete: 'complete' },
  'graphql-ws': { init: 'connection_init', ack: 'connection_ack', start: 'start', data: 'data', error: 'error', complete: 'complete' },
} as const;

export interface Closed {
  code: number;
  reason: string;
}

export interface RawSocket {
  readonly ws: WebSocket;
  readonly protocol: Subprotocol;
  /** Every JSON message received, in order. */
  readonly messages: Record<string, Json>[];
  send(message: object | string): void;
  /** Resolves with the first message (already received or to come) that matches; rejects on close or timeout. */
  next(predicate: (m: Record<string, Json>) => boolean, timeoutMs?: number): Promise<Record<string, Json>>;
  /** Resolves when the socket is closed, with the close code the client saw. */
  readonly closed: Promise<Closed>;
  readonly isClosed: boolean;
  /** The client's local TCP port (to find the server's side of the connection). */
  readonly localPort: number;
  close(): void;
}

/** Opens a WebSocket on `url` with one subprotocol and resolves once it is open (nothing sent yet). */
export function openRaw(url: string, protocol: Subprotocol, options: { headers?: Record<string, string> } = {}): Promise<RawSocket> {
  const ws = new WebSocket(url, protocol, { headers: options.headers });
  const messages: Record<string, Json>[] = [];
  const waiters = new Set<() => void>();
  let closedWith: Closed | undefined;
  const closed = new Promise<Closed>((resolve) =>
    ws.once('close', (code, reason) => {
      closedWith = { code, reason: reason.toString() };
      resolve(closedWith);
      for (const w of waiters) w();
    }),
  );
  ws.on('error', () => undefined); // the close event follows and says how it ended
  ws.on('message', (raw) => {
    let message: Record<string, Json>;
    try {
      message = JSON.parse(raw.toString());
    } catch {
      message = { type: '<not json>', raw: raw.toString().slice(0, 200) };
    }
    messages.push(message);
    for (const w of waiters) w();
  });
  const socket: RawSocket = {
    ws,
    protocol,
    messages,
    send: (message) => ws.send(typeof message === 'string' ? message : JSON.stringify(message)),
    next(predicate, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = messages.find(predicate);
          if (found) {
            cleanup();
            resolve(found);
          } else if (closedWith) {
            cleanup();
            reject(new Error(`socket closed (${closedWith.code} ${closedWith.reason}) before the message; got ${JSON.stringify(messages).slice(0, 1000)}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for a message; got ${JSON.stringify(messages).slice(0, 1000)}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    closed,
    get isClosed() {
      return closedWith !== undefined;
    },
    get localPort() {
      return (ws as unknown as { _socket: { localPort: number } })._socket.localPort;
    },
    close: () => (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING ? ws.close() : undefined),
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(socket));
    ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    ws.once('close', (code) => reject(new Error(`closed before open: ${code}`)));
  });
}

/** Opens a socket and completes the connection_init / connection_ack handshake with this token. */
export async function openInitialised(url: string, protocol: Subprotocol, token?: string, headers?: Record<string, string>): Promise<RawSocket> {
  const socket = await openRaw(url, protocol, { headers });
  socket.send({ type: 'connection_init', payload: token ? { authorization: `Bearer ${token}` } : {} });
  await socket.next((m) => m.type === 'connection_ack');
  return socket;
}

let nextId = 0;

/**
 * Runs one operation on a raw socket of either protocol and resolves with its first result
 * (`{ data, errors }`, or `{ errors }` from an error message).
 */
export async function rawOperation(
  socket: RawSocket,
  query: string | TypedDocumentNode<Json, Json>,
  variables?: Record<string, unknown>,
  timeoutMs = 10_000,
): Promise<{ id: string; data?: Json; errors?: Json[] }> {
  const id = `op-${++nextId}`;
  const names = MESSAGES[socket.protocol];
  socket.send({ id, type: names.start, payload: { query: typeof query === 'string' ? query : print(query), variables } });
  const reply = await socket.next((m) => m.id === id && (m.type === names.data || m.type === names.error), timeoutMs);
  if (reply.type === names.error) return { id, errors: Array.isArray(reply.payload) ? reply.payload : [reply.payload] };
  return { id, data: reply.payload?.data, errors: reply.payload?.errors };
}

/** Runs one query or mutation over an open graphql-ws client (the socket it already has) and resolves with its result. */
export function wsExecute<T, V>(client: Client, doc: TypedDocumentNode<T, V> | string, variables?: V): Promise<ExecutionResult<T>> {
  return new Promise((resolve, reject) => {
    let result: ExecutionResult<T> | undefined;
    client.subscribe<T>(
      { query: typeof doc === 'string' ? doc : print(doc), variables: variables as Record<string, unknown> },
      {
        next: (value) => (result = value as ExecutionResult<T>),
        error: (err) => (Array.isArray(err) ? resolve({ errors: err } as ExecutionResult<T>) : reject(err)),
        complete: () => (result ? resolve(result) : reject(new Error('completed without a result'))),
      },
    );
  });
}

/** The error codes of a result, in order. */
export const codesOf = (result: { errors?: readonly Json[] | null }) => (result.errors ?? []).map((e) => e?.extensions?.code);
