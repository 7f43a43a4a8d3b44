import 'reflect-metadata';
import type { GraphQLSchema } from 'graphql';
import { DateTimeResolver } from 'graphql-scalars';
import { buildSchema, type PubSub } from 'type-graphql';
import { resolvers } from '../resolvers/index.js';
import { eventResolvers } from '../resolvers/lab-instance.status.resolver.js';
import { authChecker } from './auth-checker.js';

/**
 * Every subscription brings its own `subscribe` (fed by the replica's InstanceEvents), so
 * TypeGraphQL's topic-based PubSub is never used; it insists on having one all the same.
 */
const unusedPubSub: PubSub = {
  publish: () => undefined,
  subscribe: () => {
    throw new Error('topic subscriptions are not used');
  },
};

/** Builds the executable schema from the resolver list. Pure: writes nothing to disk. */
export async function buildAppSchema(pubSub: PubSub = unusedPubSub): Promise<GraphQLSchema> {
  const schema = await buildSchema({
    resolvers: [...resolvers] as never,
    authChecker,
    authMode: 'error',
    scalarsMap: [{ type: Date, scalar: DateTimeResolver }],
    validate: { forbidUnknownValues: false, stopAtFirstError: true },
    pubSub,
  });
  const subscriptions = schema.getSubscriptionType()?.getFields() ?? {};
  for (const [name, resolve] of Object.entries(eventResolvers)) subscriptions[name].resolve = (snapshot) => resolve(snapshot);
  return schema;
}
