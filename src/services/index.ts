import type { Config } from '../config.js';
import type { Orm } from '../db.js';
import type { Logger } from '../logger.js';
import type { Context } from '../graphql/context.js';
import type { Mailer } from '../mail/mailer.js';
import { AccountService } from './account.service.js';
import { AuthService } from './auth.service.js';
import { ImageService } from './image.service.js';
import { InstructionPageService } from './instruction-page.service.js';
import type { KubeClient, KubeConnection } from '../k8s/client.js';
import type { InstanceEvents } from './instance-events.js';
import { LabInstanceService } from './lab-instance.service.js';
import { LabService } from './lab.service.js';
import type { RateLimiter } from './rate-limiter.js';
import type { SessionTokens } from './session-tokens.js';
import { UserService } from './user.service.js';

/** Long-lived objects, built once in createApp. */
export interface AppDeps {
  config: Config;
  orm: Orm;
  logger: Logger;
  sessionTokens: SessionTokens;
  mailer: Mailer;
  rateLimiter: RateLimiter;
  kube: KubeClient;
  kubeConnection: KubeConnection;
  events: InstanceEvents;
  /** Set once the live-status reconciler exists. */
  reconciler?: { touch(id: number): void };
}

/** Services bound to one request's EntityManager. */
export interface Services {
  auth: AuthService;
  accounts: AccountService;
  users: UserService;
  images: ImageService;
  labs: LabService;
  pages: InstructionPageService;
  instances: LabInstanceService;
}

export function createServices(deps: AppDeps, ctx: Pick<Context, 'em'>): Services {
  const max = deps.config.graphql.maxPageSize;
  const auth = new AuthService(ctx.em, deps.config, deps.sessionTokens);
  return {
    auth,
    accounts: new AccountService(ctx.em, deps.config, auth, deps.mailer, deps.rateLimiter),
    users: new UserService(ctx.em, max),
    images: new ImageService(ctx.em, max),
    labs: new LabService(ctx.em, max),
    pages: new InstructionPageService(ctx.em),
    instances: new LabInstanceService(ctx.em, deps),
  };
}
