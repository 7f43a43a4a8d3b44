import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled } from '@apollo/server/plugin/disabled';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { expressMiddleware } from '@as-integrations/express5';
import express, { type Request } from 'express';
import type { GraphQLSchema } from 'graphql';
import type { Config } from './config.js';
import { openDatabase } from './db.js';
import { buildContext, type Context } from './graphql/context.js';
import { createDocumentStore } from './graphql/documents.js';
import { formatError } from './graphql/errors.js';
import { graphiqlPage, wantsGraphiql } from './graphql/graphiql.js';
import { errorReportingPlugin, queryLimitsPlugin } from './graphql/plugins.js';
import { catalogueCachePlugin } from './graphql/response-cache.js';
import { buildAppSchema } from './graphql/schema.js';
import { createLogger, type Logger } from './logger.js';
import { createMailer } from './mail/mailer.js';
import { ensureSuperuser } from './services/auth.service.js';
import type { AppDeps } from './services/index.js';
import { RateLimiter } from './services/rate-limiter.js';
import { SessionTokens } from './services/session-tokens.js';
import { connectKubernetes, KubeClient } from './k8s/client.js';
import { InstanceEvents } from './services/lab-instance.events.js';
import { AccountEvents } from './services/account.events.js';
import { scheduleHousekeeping } from './services/housekeeping.js';
import { Reconciler } from './reconciler/lab-instance.reconciler.js';
import type { SimulatedCluster } from './simulated/index.js';
import { attachWebSockets } from './ws/server.js';

export interface App {
  readonly httpServer: Server;
  readonly deps: AppDeps;
  readonly schema: GraphQLSchema;
  /** The in-process simulated cluster, when KUBERNETES_MODE chose it. */
  readonly simulated?: SimulatedCluster;
  /** Listens on config.http (port 0 picks a free port); resolves with the URL of /graphql. */
  start(): Promise<string>;
  /** Stops watchers, closes WebSocket clients, drains HTTP, then closes the database. Idempotent. */
  stop(): Promise<void>;
}

export interface AppOptions {
  logger?: Logger;
  /** Receives every SQL statement (instrumentation for tests and benchmarks). */
  onQuery?: (sql: string) => void;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{8,128}$/;

/** The composition root's only product: builds every long-lived object. No side effects on import. */
export async function createApp(config: Config, options: AppOptions = {}): Promise<App> {
  const logger = options.logger ?? createLogger('info');
  if (config.secretKeyGenerated) {
    logger.warn('SECRET_KEY is not set: generated a random one for this process (development mode). Tokens die with the process; replicas will not agree.');
  }
  const orm = await openDatabase(config.database, logger, options.onQuery);
  try {
    await ensureSuperuser(orm.em.fork(), config, logger);
  } catch (err) {
    await orm.close(true);
    throw err;
  }
  // The simulated cluster is loaded only when chosen: production images never evaluate it.
  const kubeConnection = await connectKubernetes(config, logger, async (options) => (await import('./simulated/index.js')).startSimulatedCluster(options));
  const base = {
    config,
    orm,
    logger,
    sessionTokens: new SessionTokens(config.secretKey),
    mailer: createMailer(config, logger),
    rateLimiter: new RateLimiter(orm, config.auth.rateLimits, logger),
    kube: new KubeClient(kubeConnection.kubeConfig, config.kubernetes.requestTimeoutMs),
    kubeConnection,
    events: new InstanceEvents(),
    accountEvents: new AccountEvents(),
  };
  // The reconciler drives the services (it stops expired instances) and they touch it: built first.
  const reconciler = new Reconciler(orm, base, config, logger.child({ component: 'reconciler' }));
  const deps: AppDeps = { ...base, reconciler };
  const schema = await buildAppSchema();

  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', config.http.trustProxy);
  const httpServer = createServer(app);
  const apollo = new ApolloServer<Context>({
    schema,
    formatError,
    csrfPrevention: false, // credentials travel only in the Authorization header, never in cookies
    introspection: true,
    stopOnTerminationSignals: false, // main.ts owns signals; Apollo's own handler re-raises SIGTERM
    includeStacktraceInErrorResponses: false,
    // Bounded by bytes held, query text included; parsing stops at maxTokens, before any cache.
    documentStore: createDocumentStore(config.graphql.documentCacheBytes),
    parseOptions: { maxTokens: config.graphql.maxTokens },
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer }),
      ApolloServerPluginCacheControlDisabled(), // no HTTP caching hints: it wraps every field resolver
      queryLimitsPlugin(() => schema, config.graphql),
      errorReportingPlugin(),
      catalogueCachePlugin(orm, config.graphql.catalogueCacheEntries, config.graphql.catalogueCacheBytes),
    ],
  });
  await apollo.start();

  if (config.http.allowedHosts.length) app.use(allowedHostsGuard(config));
  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', async (_req, res) => {
    const database = await orm.isConnected().catch(() => false);
    const kubernetes = reconciler.healthy;
    const ok = database && kubernetes;
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not ready', database, kubernetes });
  });
  app.get('/graphql', (req, res, next) => {
    if (!wantsGraphiql(req.headers.accept, req.query.query)) return next();
    res.type('html').send(graphiqlPage());
  });
  app.use(
    '/graphql',
    express.json({ limit: '1mb' }),
    expressMiddleware(apollo, {
      context: async ({ req }) =>
        buildContext(deps, { authorization: req.headers.authorization, ip: req.ip, requestId: requestIdOf(req) }),
    }),
  );

  const webSockets = attachWebSockets(httpServer, schema, deps);
  let stopping: Promise<void> | undefined;
  let stopHousekeeping: (() => void) | undefined;
  return {
    httpServer,
    deps,
    schema,
    simulated: kubeConnection.simulated as SimulatedCluster | undefined,
    async start() {
      await new Promise<void>((resolve, reject) => {
        httpServer.once('error', reject);
        httpServer.listen(config.http.port, config.http.host, () => resolve());
      });
      reconciler.start();
      stopHousekeeping = scheduleHousekeeping(orm, logger);
      const { port } = httpServer.address() as AddressInfo;
      const host = config.http.host === '0.0.0.0' || config.http.host === '::' ? '127.0.0.1' : config.http.host;
      const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}/graphql`;
      logger.info('listening', { url, database: config.database.engine });
      return url;
    },
    stop() {
      stopping ??= (async () => {
        stopHousekeeping?.();
        await reconciler.stop();
        await webSockets.close();
        await apollo.stop(); // drains HTTP through the plugin
        await deps.mailer.close(); // mails still in flight go out first
        await kubeConnection.simulated?.stop();
        await orm.close(true);
      })();
      return stopping;
    },
  };
}

function requestIdOf(req: Request): string | undefined {
  const header = req.headers['x-request-id'];
  return typeof header === 'string' && REQUEST_ID.test(header) ? header : undefined;
}

/** The original's ALLOWED_HOSTS: refuse requests whose Host is not listed (probes on any host pass). */
function allowedHostsGuard(config: Config): express.RequestHandler {
  const allowed = new Set(config.http.allowedHosts.map((h) => h.toLowerCase()));
  return (req, res, next) => {
    if (req.path === '/healthz' || req.path === '/readyz' || allowed.has('*')) return next();
    const forwarded = config.http.useXForwardedHost ? req.headers['x-forwarded-host'] : undefined;
    const host = String(forwarded ?? req.headers.host ?? '').split(',')[0].trim().replace(/:\d+$/, '').toLowerCase();
    if (allowed.has(host)) return next();
    res.status(400).json({ errors: [{ message: 'Host not allowed', extensions: { code: 'BAD_USER_INPUT' } }] });
  };
}
