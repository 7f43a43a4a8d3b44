import type { TypedDocumentNode } from '@graphql-typed-document-node/core';
import { print, type DocumentNode } from 'graphql';
import { expect } from 'vitest';

export interface GqlError {
  message: string;
  path?: (string | number)[];
  extensions?: { code?: string; field?: string; [key: string]: unknown };
}

export interface GqlResult<T> {
  status: number;
  data?: T | null;
  errors?: GqlError[];
  headers: Headers;
}

/** A real GraphQL-over-HTTP client: POSTs JSON to the listening server. */
export class GqlClient {
  constructor(
    readonly url: string,
    readonly token?: string,
  ) {}

  withToken(token: string | undefined): GqlClient {
    return new GqlClient(this.url, token);
  }

  async request<T, V>(doc: TypedDocumentNode<T, V> | DocumentNode | string, variables?: V): Promise<GqlResult<T>> {
    const res = await fetch(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
      },
      body: JSON.stringify({ query: typeof doc === 'string' ? doc : print(doc), variables }),
    });
    const body = (await res.json()) as { data?: T; errors?: GqlError[] };
    return { status: res.status, data: body.data, errors: body.errors, headers: res.headers };
  }

  /** Runs the operation and fails the test on any error. */
  async ok<T, V>(doc: TypedDocumentNode<T, V> | DocumentNode | string, variables?: V): Promise<T> {
    const result = await this.request(doc, variables);
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    return result.data as T;
  }

  /** Runs the operation, expects exactly one error with this code (and field), and returns it. */
  async fails<T, V>(
    doc: TypedDocumentNode<T, V> | DocumentNode | string,
    variables: V | undefined,
    code: string,
    field?: string,
  ): Promise<GqlError> {
    const result = await this.request(doc, variables);
    expect(result.errors?.length, JSON.stringify(result)).toBe(1);
    const error = result.errors![0];
    expect(error.extensions?.code, JSON.stringify(error)).toBe(code);
    if (field !== undefined) expect(error.extensions?.field, JSON.stringify(error)).toBe(field);
    return error;
  }
}
