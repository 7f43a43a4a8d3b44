import { randomUUID } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/core';
import type { Config } from '../config.js';
import type { Orm } from '../db.js';
import type { Logger } from '../logger.js';
import { authenticate, type Viewer } from '../services/account.sessions.js';
import { createServices, type AppDeps, type Services } from '../services/index.js';
import { createLoaders, type Loaders } from './loaders.js';

export type { Viewer };

/** Everything a resolver may use, built per HTTP request or per WebSocket operation. */
export interface Context {
  requestId: string;
  ip: string;
  em: EntityManager;
  /** The authenticated caller, or null. */
  viewer: Viewer | null;
  /** Why a presented bearer token was refused (the request then runs as anonymous). */
  authError: string | null;
  config: Config;
  logger: Logger;
  loaders: Loaders;
  services: Services;
  /** Instance state changes on this replica. */
  events: AppDeps['events'];
  /** WebSocket only: true while the client's socket has too much unsent data. */
  congested?: () => boolean;
}

export interface ContextInput {
  authorization?: string | null;
  ip?: string;
  requestId?: string;
  congested?: () => boolean;
}

/** The one context builder, shared by HTTP and both WebSocket protocols. */
export async function buildContext(deps: AppDeps, input: ContextInput): Promise<Context> {
  const em = deps.orm.em.fork();
  const requestId = input.requestId ?? randomUUID();
  const { viewer, authError } = await authenticate(deps.sessionTokens, em, input.authorization ?? null);
  const ctx: Context = {
    requestId,
    ip: input.ip ?? 'unknown',
    em,
    viewer,
    authError,
    config: deps.config,
    logger: deps.logger.child({ requestId }),
    loaders: createLoaders(em),
    services: createServices(deps, em),
    events: deps.events,
    congested: input.congested,
  };
  return ctx;
}

export type { AppDeps, Orm };
