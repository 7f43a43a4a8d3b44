import { renderGraphiQL } from '@graphql-yoga/render-graphiql';

let page: string | undefined;

/** GraphiQL, self-contained (scripts and styles inline): it works offline, with subscriptions over WebSocket. */
export function graphiqlPage(): string {
  page ??= renderGraphiQL({
    title: 'Lab Orchestrator',
    endpoint: '/graphql',
    subscriptionsProtocol: 'WS',
    defaultQuery: [
      '# Welcome to Lab Orchestrator.',
      '# Sign in with the login mutation, then put the token',
      '# in Headers: {"Authorization": "Bearer <token>"}',
      '{',
      '  labs(first: 10) {',
      '    totalCount',
      '    edges {',
      '      node { id name description vms { name image { name } } }',
      '    }',
      '  }',
      '}',
      '',
    ].join('\n'),
  } as never);
  return page;
}

/** A browser navigating to /graphql (not a GraphQL client, which sends a query). */
export function wantsGraphiql(accept: string | undefined, query: unknown): boolean {
  if (query !== undefined) return false;
  return Boolean(accept && accept.includes('text/html'));
}
