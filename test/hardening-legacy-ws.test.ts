/**
 * Adversarial audit: the legacy subprotocol (`graphql-ws`, subscriptions-transport-ws) must hold the
 * same line as graphql-transport-ws: no operation before connection_init, a socket that never sends
 * it is closed after the same init timeout, and rate limits count the client's real address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codesOf, MESSAGES, openInitialised, openRaw, rawOperation, type Subprotocol } from './support/hardening/ws.js';
import { uniqueEmail } from './support/accounts.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';

const PROTOCOLS: Subprotocol[] = ['graphql-transport-ws', 'graphql-ws'];

describe.each(ENGINES)('the legacy WebSocket protocol on %s', (engine) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer(engine, { TRUST_PROXY: 'true', RATE_LIMIT_LOGIN: '1/600', RATE_LIMIT_ADDRESS_MULTIPLIER: '1' });
  });
  afterAll(() => server?.stop());

  it('closes a legacy socket that never sends connection_init, as graphql-transport-ws does after its init timeout', async () => {
    const started = Date.now();
    const [modern, legacy] = await Promise.all([openRaw(server.wsUrl, 'graphql-transport-ws'), openRaw(server.wsUrl, 'graphql-ws')]);
    const modernClosed = await modern.closed;
    const modernAfter = Date.now() - started;
    expect(modernClosed.code).toBe(4408); // graphql-ws: connection initialisation timeout
    // The legacy socket gets the same time, and two seconds more.
    const legacyClosed = await Promise.race([legacy.closed, new Promise<null>((r) => setTimeout(() => r(null), 2000))]);
    legacy.close();
    expect(legacyClosed, `graphql-transport-ws closed after ${modernAfter} ms; the legacy socket was still open ${Date.now() - started} ms after it opened`).not.toBeNull();
  });

  it('runs no operation sent before connection_init (an error or a close, no data), as graphql-transport-ws', async () => {
    const socket = await openRaw(server.wsUrl, 'graphql-ws');
    socket.send({ id: 'early', type: MESSAGES['graphql-ws'].start, payload: { query: '{ labs { totalCount } }' } });
    const outcome = await Promise.race([
      socket.closed.then((c) => `closed ${c.code}`),
      socket.next((m) => m.id === 'early', 10_000).then((m) => m.type as string),
    ]);
    socket.close();
    expect(outcome === 'error' || outcome.startsWith('closed'), `the server answered with a "${outcome}" message: ${JSON.stringify(socket.messages)}`).toBe(true);
  });

  it.each(PROTOCOLS)('counts login attempts over %s per forwarded client address (TRUST_PROXY), not one bucket for all', async (protocol) => {
    const suffix = `${protocol === 'graphql-ws' ? 1 : 2}${engine === 'sqlite' ? 1 : 2}`;
    const [first, second] = await Promise.all(
      [`198.51.100.${suffix}`, `203.0.113.${suffix}`].map((address) => openInitialised(server.wsUrl, protocol, undefined, { 'x-forwarded-for': address })),
    );
    const login = (socket: typeof first) =>
      rawOperation(socket, 'mutation ($email: String!) { login(email: $email, password: "not-the-password") { token } }', { email: uniqueEmail('ws') }).then(codesOf);
    // The address limit is one attempt here: each client's first attempt is its own.
    const attempts = { first: await login(first), second: await login(second), firstAgain: await login(first) };
    first.close();
    second.close();
    expect(attempts).toEqual({ first: ['UNAUTHENTICATED'], second: ['UNAUTHENTICATED'], firstAgain: ['RATE_LIMITED'] });
  });
});
