import type { KeyValueCache } from '@apollo/utils.keyvaluecache';
import { GraphQLError, parse, validate, visit, type DocumentNode, type GraphQLSchema } from 'graphql';
import { ByteLru, stringBytes } from './byte-lru.js';

/** Bytes one AST node holds, roughly (object, kind, name, location): an upper bound, not a measure. */
const NODE_BYTES = 250;

/**
 * What a parsed document keeps alive: its nodes and, when it has locations, the whole query text
 * (comments included: Apollo's own cache sized entries without it, so a 900 KB comment per
 * request was held for free).
 */
export function documentBytes(document: DocumentNode): number {
  let nodes = 0;
  visit(document, { enter: () => void nodes++ });
  return nodes * NODE_BYTES + stringBytes(document.loc?.source.body ?? '');
}

/** Apollo Server's parsed-document store, bounded by the bytes its documents hold. */
export function createDocumentStore(maxBytes: number): KeyValueCache<DocumentNode> {
  const lru = new ByteLru<DocumentNode>(maxBytes, (key, doc) => stringBytes(key) + documentBytes(doc));
  return {
    async get(key) {
      return lru.get(key);
    },
    async set(key, value) {
      lru.set(key, value);
    },
    async delete(key) {
      return lru.delete(key);
    },
  };
}

export type Prepared = { document: DocumentNode; errors?: undefined } | { errors: readonly GraphQLError[]; document?: undefined };

const clientError = (message: string, reason: string) => new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', reason } });

/**
 * For the WebSocket protocols: parses (without source locations, to keep subscriptions small,
 * stopping at `maxTokens`) and validates once per query text; thousands of subscribers of one query
 * share one document. Kept by bytes held, the query text (the key) included. Errors are the
 * client's: BAD_USER_INPUT with Apollo's reasons, as over HTTP.
 */
export function createPreparer(schema: GraphQLSchema, options: { maxBytes: number; maxTokens: number }) {
  const cache = new ByteLru<Prepared>(options.maxBytes, (key, prepared) =>
    stringBytes(key) + (prepared.document ? documentBytes(prepared.document) : 1024),
  );
  return (query: unknown): Prepared => {
    if (typeof query !== 'string') return { errors: [clientError('query must be a string', 'BAD_REQUEST')] };
    let prepared = cache.get(query);
    if (prepared) return prepared;
    let document: DocumentNode;
    try {
      document = parse(query, { noLocation: true, maxTokens: options.maxTokens });
    } catch (err) {
      return { errors: [clientError((err as Error).message, 'GRAPHQL_PARSE_FAILED')] };
    }
    const errors = validate(schema, document);
    prepared = errors.length
      ? { errors: errors.map((e) => clientError(e.message, 'GRAPHQL_VALIDATION_FAILED')) }
      : { document };
    cache.set(query, prepared);
    return prepared;
  };
}
