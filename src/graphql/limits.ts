import {
  Kind,
  visit,
  type ValueNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { fieldExtensionsEstimator, getComplexity, simpleEstimator, type ComplexityEstimator } from 'graphql-query-complexity';
import { AppError } from '../errors.js';

export interface QueryLimits {
  maxDepth: number;
  maxCost: number;
  /** Aliased fields in one operation, fragments expanded (GraphQL Armor's max-aliases). */
  maxAliases: number;
  /** Fields at the root of one operation, fragments expanded: each may run its own statements. */
  maxRootFields: number;
}

/** A client error that HTTP answers with 400 (200 for application/json, per GraphQL over HTTP). */
const limitError = (message: string, reason: string) =>
  new AppError(message, 'BAD_USER_INPUT', { reason, http: { status: 400 } });

/**
 * The first string holding a NUL byte, by the name of its field: in the operation's literals or in
 * the variables. PostgreSQL refuses NUL in text and SQLite's errors would echo the value; no field of
 * this API has a use for one.
 */
function nulField(document: DocumentNode, variables: Record<string, unknown> | undefined): string | undefined {
  let found: string | undefined;
  visit(document, {
    Argument: (node) => {
      if (!found) found = nulInLiteral(node.value, node.name.value);
    },
  });
  return found ?? nulInValue(variables ?? {}, undefined);
}

function nulInLiteral(value: ValueNode, field: string): string | undefined {
  if (value.kind === Kind.STRING) return value.value.includes('\0') ? field : undefined;
  if (value.kind === Kind.LIST) return first(value.values, (v) => nulInLiteral(v, field));
  if (value.kind === Kind.OBJECT) return first(value.fields, (f) => nulInLiteral(f.value, f.name.value));
  return undefined;
}

function nulInValue(value: unknown, field: string | undefined): string | undefined {
  if (typeof value === 'string') return value.includes('\0') ? (field ?? 'variables') : undefined;
  if (Array.isArray(value)) return first(value, (v) => nulInValue(v, field));
  if (value && typeof value === 'object') return first(Object.entries(value), ([k, v]) => nulInValue(v, k));
  return undefined;
}

function first<T>(items: readonly T[], find: (item: T) => string | undefined): string | undefined {
  for (const item of items) {
    const hit = find(item);
    if (hit) return hit;
  }
  return undefined;
}

/** Counts aliases and root fields, each fragment spread expanded (at most once per path). */
function shapeOf(operation: OperationDefinitionNode, fragments: Map<string, FragmentDefinitionNode>): { aliases: number; rootFields: number } {
  let aliases = 0;
  const walk = (set: SelectionSetNode | undefined, seen: Set<string>, root: boolean): number => {
    let fields = 0;
    for (const sel of set?.selections ?? []) {
      if (sel.kind === Kind.FIELD) {
        fields++;
        if (sel.alias) aliases++;
        walk(sel.selectionSet, seen, false);
      } else if (sel.kind === Kind.INLINE_FRAGMENT) {
        fields += walk(sel.selectionSet, seen, root);
      } else if (!seen.has(sel.name.value)) {
        fields += walk(fragments.get(sel.name.value)?.selectionSet, new Set([...seen, sel.name.value]), root);
      }
    }
    return fields;
  };
  const rootFields = walk(operation.selectionSet, new Set(), true);
  return { aliases, rootFields };
}

/** A list field costs its children once per requested item (`first`, default 20). */
const connectionEstimator: ComplexityEstimator = ({ args, childComplexity }) => {
  if (typeof args.first === 'number') return 1 + childComplexity * Math.max(args.first, 1);
  return undefined;
};

function depthOf(
  set: SelectionSetNode | undefined,
  fragments: Map<string, FragmentDefinitionNode>,
  seen: Set<string>,
): number {
  if (!set) return 0;
  let max = 0;
  for (const sel of set.selections) {
    if (sel.kind === Kind.FIELD) {
      if (sel.name.value.startsWith('__')) continue;
      max = Math.max(max, sel.selectionSet ? 1 + depthOf(sel.selectionSet, fragments, seen) : 1);
    } else if (sel.kind === Kind.INLINE_FRAGMENT) {
      max = Math.max(max, depthOf(sel.selectionSet, fragments, seen));
    } else {
      const name = sel.name.value;
      const fragment = fragments.get(name);
      if (!fragment || seen.has(name)) continue;
      max = Math.max(max, depthOf(fragment.selectionSet, fragments, new Set([...seen, name])));
    }
  }
  return max;
}

/**
 * Refuses an operation that is too deep or too costly before anything runs. Used by HTTP and
 * both WebSocket protocols. Throws BAD_USER_INPUT with the measured figure and the limit.
 */
export function enforceQueryLimits(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown> | undefined,
  limits: QueryLimits,
): void {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const def of document.definitions) if (def.kind === Kind.FRAGMENT_DEFINITION) fragments.set(def.name.value, def);
  const nul = nulField(document, variables);
  if (nul) throw new AppError(`${nul} must not contain a NUL character`, 'BAD_USER_INPUT', { field: nul, http: { status: 400 } });
  const depth = depthOf(operation.selectionSet, fragments, new Set());
  if (depth > limits.maxDepth) throw limitError(`Query depth ${depth} exceeds the limit of ${limits.maxDepth}`, 'QUERY_TOO_DEEP');
  const shape = shapeOf(operation, fragments);
  if (shape.aliases > limits.maxAliases) throw limitError(`Query has ${shape.aliases} aliases; the limit is ${limits.maxAliases}`, 'TOO_MANY_ALIASES');
  if (shape.rootFields > limits.maxRootFields) {
    throw limitError(`Query has ${shape.rootFields} root fields; the limit is ${limits.maxRootFields}`, 'TOO_MANY_ROOT_FIELDS');
  }
  let cost: number;
  try {
    cost = getComplexity({
      schema,
      query: { kind: Kind.DOCUMENT, definitions: [operation, ...fragments.values()] },
      variables: variables ?? {},
      estimators: [fieldExtensionsEstimator(), connectionEstimator, simpleEstimator({ defaultComplexity: 1 })],
    });
  } catch (err) {
    // Variables that do not fit their types: the same answer execution would give.
    throw limitError((err as Error).message, 'INVALID_VARIABLES');
  }
  if (cost > limits.maxCost) {
    throw limitError(`Query cost ${cost} exceeds the limit of ${limits.maxCost}`, 'QUERY_TOO_COSTLY');
  }
}
