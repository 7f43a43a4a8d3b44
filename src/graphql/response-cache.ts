import type { ApolloServerPlugin, GraphQLResponse } from '@apollo/server';
import { Kind, type OperationDefinitionNode } from 'graphql';
import type { Orm } from '../db.js';
import { readCatalogueVersion } from '../services/catalogue-version.js';
import { createHash } from 'node:crypto';
import { ByteLru, stringBytes } from './byte-lru.js';
import type { Context } from './context.js';

/** Root fields whose answers depend on nothing but the catalogue (not on the caller). */
const CATALOGUE_FIELDS = new Set(['image', 'images', 'lab', 'labs', 'instructionPage', '__typename']);

type Entry = { version: string; body: GraphQLResponse['body']; bytes: number };

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
 * saved. At most `maxEntries` answers and `maxBytes` of them are kept, least recently used first out;
 * the key is a hash, so a long query text is not kept with its answer.
 */
export function catalogueCachePlugin(orm: Orm, maxEntries: number, maxBytes: number): ApolloServerPlugin<Context> {
  const cache = new ByteLru<Entry>(maxBytes, (key, entry) => stringBytes(key) + entry.bytes, maxEntries);
  return {
    async requestDidStart() {
      let key: string | undefined;
      let version: string | undefined;
      let answered = false;
      return {
        async responseForOperation({ operation, request, contextValue }) {
          if (maxEntries <= 0 || !operation || !isCatalogueOnly(operation)) return null;
          // Without the version there is no safe answer from memory: execute (and fail, if the database is gone, the usual way).
          version = await readCatalogueVersion(contextValue.em).catch(() => undefined);
          if (!version) return null;
          key = createHash('sha256')
            .update(`${request.operationName ?? ''}\n${JSON.stringify(request.variables ?? {})}\n${request.query}`)
            .digest('base64url');
          const hit = cache.get(key);
          if (!hit || hit.version !== version) return null;
          answered = true; // the get above refreshed its recency; storing it again would only re-measure it
          return { body: hit.body, http: { status: undefined, headers: new Map() } as never };
        },
        async willSendResponse({ response }) {
          if (answered || !key || !version || response.body.kind !== 'single' || response.body.singleResult.errors) return;
          const bytes = stringBytes(JSON.stringify(response.body.singleResult));
          cache.set(key, { version, body: response.body, bytes });
        },
      };
    },
  };
}
