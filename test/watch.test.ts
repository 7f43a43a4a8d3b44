import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulatedCluster, type SimulatedCluster } from '../src/simulated/index.js';
import { eventLines, eventObjectKey, latestEventLines, watch, WatchHttpError } from '../src/k8s/watch.js';

function kubeConfigFor(server: string, token?: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: true }],
    users: [{ name: 'u', ...(token ? { token } : {}) }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  return kc;
}

describe('watch event lines', () => {
  it('joins lines cut by chunk boundaries and skips what is not an event', () => {
    const seen: Array<[string, unknown]> = [];
    const feed = eventLines((type, object) => seen.push([type, object]));
    const line = (type: string, name: string) => JSON.stringify({ type, object: { metadata: { name } } }) + '\n';
    const text = line('ADDED', 'a') + 'not json\n' + '{"object":{}}\n' + line('MODIFIED', 'ü-b') + line('DELETED', 'c');
    for (let i = 0; i < text.length; i += 7) feed(text.slice(i, i + 7));
    feed('{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}'); // no newline yet
    expect(seen).toEqual([
      ['ADDED', { metadata: { name: 'a' } }],
      ['MODIFIED', { metadata: { name: 'ü-b' } }],
      ['DELETED', { metadata: { name: 'c' } }],
    ]);
    feed('\n');
    expect(seen[3]).toEqual(['BOOKMARK', { metadata: { resourceVersion: '9' } }]);
  });
});

describe('the latest events of a chunk', () => {
  const line = (type: string, object: unknown) => JSON.stringify({ type, object }) + '\n';
  const pod = (namespace: string, name: string, phase: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { generateName: 'p-', namespace, labels: { name: 'label' }, ownerReferences: [{ name: 'owner', uid: 'u1' }], name },
    status: { phase },
  });

  it('reads the namespace and name of the event object, whatever the key order and nesting', () => {
    expect(eventObjectKey(line('MODIFIED', pod('lab-1', 'web', 'Running')))).toBe('lab-1/web');
    expect(eventObjectKey('{"object":{"status":{"name":"x"},"metadata":{"name":"n\\u00e9 \\"q\\""}},"type":"ADDED"}')).toBe('/né "q"');
    expect(eventObjectKey(line('ADDED', { kind: 'Namespace', metadata: { name: 'lab-1' } }))).toBe('/lab-1');
    expect(eventObjectKey(line('BOOKMARK', { metadata: { resourceVersion: '9' } }))).toBeUndefined();
    expect(eventObjectKey(line('ERROR', { kind: 'Status', code: 410, metadata: {} }))).toBeUndefined();
    expect(eventObjectKey('{"type":"ADDED","other":{"metadata":{"name":"a"}}}')).toBeUndefined();
    expect(eventObjectKey('{"type":"ADDED","object":{"metadata":{"name":"a"')).toBeUndefined();
  });

  it('hands on only the last event of each object in a chunk, in order, and every event without an object name', () => {
    const seen: string[] = [];
    const feed = latestEventLines((type, object) => {
      const o = object as { metadata: { name?: string; resourceVersion?: string }; status?: { phase?: string } };
      seen.push(`${type} ${o.metadata.name ?? o.metadata.resourceVersion} ${o.status?.phase ?? ''}`.trim());
    });
    feed(
      line('MODIFIED', pod('a', 'web', 'Pending')) +
        line('MODIFIED', pod('b', 'web', 'Pending')) +
        line('MODIFIED', pod('a', 'web', 'Running')) +
        line('BOOKMARK', { metadata: { resourceVersion: '9' } }) +
        line('DELETED', pod('b', 'web', 'Pending')) +
        line('MODIFIED', pod('a', 'db', 'Pending')).slice(0, 20),
    );
    expect(seen).toEqual(['MODIFIED web Running', 'BOOKMARK 9', 'DELETED web Pending']);
    feed(line('MODIFIED', pod('a', 'db', 'Pending')).slice(20) + line('MODIFIED', pod('a', 'web', 'Succeeded')));
    expect(seen.slice(3)).toEqual(['MODIFIED db Pending', 'MODIFIED web Succeeded']);
  });

  it('hands on every event of a chunk, as eventLines, when the last one of an object is not an event', () => {
    const seen: string[] = [];
    const feed = latestEventLines((type, object) => seen.push(`${type} ${(object as { status: { phase: string } }).status.phase}`));
    feed(line('MODIFIED', pod('a', 'web', 'Pending')) + line('MODIFIED', pod('a', 'web', 'Running')) + JSON.stringify({ object: pod('a', 'web', 'Failed') }) + '\n');
    expect(seen).toEqual(['MODIFIED Pending', 'MODIFIED Running']);
  });
});

describe('a watch request', () => {
  let cluster: SimulatedCluster;
  beforeAll(async () => {
    cluster = await startSimulatedCluster();
  });
  afterAll(() => cluster?.stop());

  it('streams the events of a label-selected watch until it is aborted, then reports the end once', async () => {
    const kc = kubeConfigFor(cluster.url);
    const core = kc.makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'watched-a', labels: { team: 'x' } } } });
    await core.createNamespace({ body: { metadata: { name: 'unwatched', labels: { team: 'y' } } } });
    const events: string[] = [];
    let added: () => void = () => undefined;
    const twoAdded = new Promise<void>((resolve) => (added = resolve));
    const ends: Array<Error | null> = [];
    const controller = await watch(
      kc,
      '/api/v1/namespaces',
      { labelSelector: 'team=x', resourceVersion: '0', allowWatchBookmarks: true },
      (type, object) => {
        events.push(`${type} ${(object as { metadata: { name: string } }).metadata.name}`);
        if (events.length === 2) added();
      },
      (err) => ends.push(err),
    );
    await core.createNamespace({ body: { metadata: { name: 'watched-b', labels: { team: 'x' } } } });
    await twoAdded;
    expect(events).toEqual(['ADDED watched-a', 'ADDED watched-b']);
    controller.abort();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(ends).toHaveLength(1);
  });

  it('reports an answer other than 200 to done, with its status code, instead of throwing', async () => {
    const ends: Array<Error | null> = [];
    await watch(kubeConfigFor(cluster.url), '/api/v1/no-such-kind', {}, () => undefined, (err) => ends.push(err));
    expect(ends).toHaveLength(1);
    expect(ends[0]).toBeInstanceOf(WatchHttpError);
    expect((ends[0] as WatchHttpError).statusCode).toBe(404);
  });

  it('reports an unreachable API server to done', async () => {
    const ends: Array<Error | null> = [];
    await watch(kubeConfigFor('http://127.0.0.1:1'), '/api/v1/pods', {}, () => undefined, (err) => ends.push(err));
    expect(ends).toHaveLength(1);
    expect(ends[0]?.message).toMatch(/ECONNREFUSED/);
  });

  it("authenticates as the kubeconfig's user", async () => {
    let headers: IncomingHttpHeaders = {};
    const api = createServer((req, res) => {
      headers = req.headers;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{"type":"ADDED","object":{"metadata":{"name":"p"}}}\n');
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
      const ended = new Promise<Error | null>((resolve) => void watch(kubeConfigFor(url, 'secret-token'), '/api/v1/pods', {}, () => undefined, resolve));
      expect(await ended).toBeNull(); // the server ended the response: a clean end
      expect(headers.authorization).toBe('Bearer secret-token');
    } finally {
      await new Promise<void>((resolve) => api.close(() => resolve()));
    }
  });
});

describe('the informer', () => {
  it('retries a watch that ends with an ERROR event other than 410 with growing backoff, not at once in a loop', async () => {
    const { Informer } = await import('../src/k8s/informer.js');
    const { createLogger } = await import('../src/logger.js');
    const watchesAt: number[] = [];
    let third: () => void = () => undefined;
    const thirdWatch = new Promise<void>((resolve) => (third = resolve));
    const api = createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      if (!req.url?.includes('watch=')) {
        res.end(JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: { resourceVersion: '7' }, items: [] }));
        return;
      }
      watchesAt.push(performance.now());
      if (watchesAt.length === 3) third();
      // What the API server sends when it gives up on a watch for another reason than an expired version.
      res.end(`${JSON.stringify({ type: 'ERROR', object: { kind: 'Status', status: 'Failure', code: 500, reason: 'InternalError', message: 'etcd hiccup' } })}\n`);
    });
    await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    const options = { labelSelector: 'a=b', requestTimeoutMs: 5000, stallTimeoutMs: 60_000, watchTimeoutSeconds: 300, backoffMinMs: 200, backoffMaxMs: 5000 };
    const informer = new Informer('pods', kubeConfigFor(url), options, { onEvent: () => undefined, onSynced: () => undefined }, createLogger('error'));
    informer.start();
    try {
      await thirdWatch;
      const [first, second, thirdAt] = watchesAt;
      // Backoff with ±20 % jitter: at least 160 ms, then at least 320 ms; an immediate restart takes a few ms.
      expect(second - first).toBeGreaterThanOrEqual(150);
      expect(thirdAt - second).toBeGreaterThanOrEqual(300);
      expect(informer.healthy).toBe(false);
    } finally {
      informer.stop();
      await new Promise<void>((resolve) => api.close(() => resolve()));
    }
  });
});
