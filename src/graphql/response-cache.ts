import type { ApolloServerPlugin, GraphQLResponse } from '@apollo/server';
import { Kind, type OperationDefinitionNode } from 'graphql';
import type { Orm } from '../db.js';
import { readCatalogueVersion } from '../services/catalogue-version.js';
import type { Context } from './context.js';

/** Root fields whose answers depend on nothing but the catalogue (not on the caller). */
const CATALOGUE_FIELDS = new Set(['image', 'images', 'lab', 'labs', 'instructionPage', '__typename']);

type Entry = { version: string; body: GraphQLResponse['body'] };

function isCatalogueOnly(operation: OperationDefinitionNode): boolean {
  return (
    operation.operation === 'query' &&
    operation.selectionSet.selections.every((s) => s.kind === Kind.FIELD && CATALOGUE_FIELDS.has(s.name.value))
  );
}

/**
 * Answers catalogue-only queries (images, labs, pages: the same for every caller) from memory while
 * the catalogue's version in the database is unchanged. Every request still reads that version, so
 * a change made through any replica is seen by the next request everywhere; only the execution is
 * saved. At most `maxEntries` answers are kept, least recently used first out.
 */
export function catalogueCachePlugin(orm: Orm, maxEntries: number): ApolloServerPlugin<Context> {
  const cache = new Map<string, Entry>();
  return {
    async requestDidStart() {
      let key: string | undefined;
      let version: string | undefined;
      return {
        async responseForOperation({ operation, request, contextValue }) {
          if (maxEntries <= 0 || !isCatalogueOnly(operation)) return null;
          // Without the version there is no safe answer from memory: execute (and fail, if the database is gone, the usual way).
          version = await readCatalogueVersion(contextValue.em).catch(() => undefined);
          if (!version) return null;
          key = `${request.operationName ?? ''}\n${JSON.stringify(request.variables ?? {})}\n${request.query}`;
          const hit = cache.get(key);
          if (!hit || hit.version !== version) return null;
          cache.delete(key); // re-insert: the Map's order is the recency order
          cache.set(key, hit);
          return { body: hit.body, http: { status: undefined, headers: new Map() } as never };
        },
        async willSendResponse({ response }) {
          if (!key || !version || response.body.kind !== 'single' || response.body.singleResult.errors) return;
          cache.delete(key);
          cache.set(key, { version, body: response.body });
          if (cache.size > maxEntries) cache.delete(cache.keys().next().value!);
        },
      };
    },
  };
}
