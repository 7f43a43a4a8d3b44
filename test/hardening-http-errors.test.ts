/**
 * Adversarial audit: client errors must be answered as client errors. GraphQL over HTTP: a request
 * error is 400 with `application/graphql-response+json` and 200 with the legacy `application/json`,
 * never 500; and no client mistake may come back as INTERNAL_SERVER_ERROR, over HTTP or WebSocket.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codesOf, openInitialised, rawOperation, type Subprotocol } from './support/hardening/ws.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';

const GRAPHQL_RESPONSE = 'application/graphql-response+json';
const JSON_TYPE = 'application/json';

const DEEP = '{ labs { edges { node { vms { lab { vms { lab { vms { lab { vms { name } } } } } } } } } } }';
const COSTLY = '{ labs(first: 100) { edges { node { vms { lab { vms { lab { instructionPages { title } } } } } } } } }';
const TYPED = 'query ($first: Int) { labs(first: $first) { totalCount } }';

interface Answer {
  status: number;
  codes: unknown[];
}

async function answer(res: Response): Promise<Answer> {
  const text = await res.text();
  let body: { errors?: { extensions?: { code?: string } }[] };
  try {
    body = JSON.parse(text);
  } catch {
    body = { errors: [{ extensions: { code: `<not JSON: ${text.slice(0, 80)}>` } }] };
  }
  return { status: res.status, codes: codesOf(body) };
}

describe.each(ENGINES)('client errors answered as client errors on %s', (engine) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(engine);
  });
  afterAll(() => server?.stop());

  const post = (body: object, accept: string) =>
    fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json', accept }, body: JSON.stringify(body) }).then(answer);
  const get = (params: Record<string, string>, accept: string) =>
    fetch(`${server.url}?${new URLSearchParams(params)}`, { headers: { accept } }).then(answer);

  it.each([
    ['too deep', { query: DEEP }],
    ['too costly', { query: COSTLY }],
    ['with a variable of the wrong type', { query: TYPED, variables: { first: 'ten' } }],
  ])('answers a query %s with 400 for graphql-response+json and 200 for application/json, on POST and GET, with BAD_USER_INPUT', async (_what, request) => {
    const params: Record<string, string> = { query: request.query };
    if ('variables' in request) params.variables = JSON.stringify(request.variables);
    const answers = {
      postGraphqlResponse: await post(request, GRAPHQL_RESPONSE),
      postJson: await post(request, JSON_TYPE),
      getGraphqlResponse: await get(params, GRAPHQL_RESPONSE),
      getJson: await get(params, JSON_TYPE),
    };
    const bad = ['BAD_USER_INPUT'];
    expect(answers).toEqual({
      postGraphqlResponse: { status: 400, codes: bad },
      postJson: { status: 200, codes: bad },
      getGraphqlResponse: { status: 400, codes: bad },
      getJson: { status: 200, codes: bad },
    });
  });

  it.each([
    ['two operations and no operationName', { query: 'query A { labs { totalCount } } query B { images { totalCount } }' }],
    ['a subscription', { query: 'subscription { labInstancesStatus { status } }' }],
    [
      'a persisted query whose sha256Hash does not match its text',
      {
        query: '{ labs { totalCount } }',
        extensions: { persistedQuery: { version: 1, sha256Hash: createHash('sha256').update('{ images { totalCount } }').digest('hex') } },
      },
    ],
  ])('answers a POST of %s with a client error (BAD_USER_INPUT), never 500 nor INTERNAL_SERVER_ERROR', async (_what, request) => {
    const answers = { graphqlResponse: await post(request, GRAPHQL_RESPONSE), json: await post(request, JSON_TYPE) };
    expect(answers.graphqlResponse.status, JSON.stringify(answers)).toBeLessThan(500);
    expect(answers.json.status, JSON.stringify(answers)).toBeLessThan(500);
    expect({ graphqlResponse: answers.graphqlResponse.codes, json: answers.json.codes }).toEqual({ graphqlResponse: ['BAD_USER_INPUT'], json: ['BAD_USER_INPUT'] });
  });

  it.each(['graphql-transport-ws', 'graphql-ws'] as Subprotocol[])(
    'answers unparsable, invalid and too deep operations over %s with BAD_USER_INPUT, never INTERNAL_SERVER_ERROR',
    async (protocol) => {
      const socket = await openInitialised(server.wsUrl, protocol);
      const codes = {
        parse: codesOf(await rawOperation(socket, '{ labs { ')),
        validation: codesOf(await rawOperation(socket, '{ labs { nope } }')),
        depth: codesOf(await rawOperation(socket, DEEP)),
      };
      socket.close();
      expect(codes).toEqual({ parse: ['BAD_USER_INPUT'], validation: ['BAD_USER_INPUT'], depth: ['BAD_USER_INPUT'] });
    },
  );
});
