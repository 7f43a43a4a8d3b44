/** A minimal GraphQL-over-HTTP client for the benchmarks' set-up (not for what they measure). */
export async function gql<T>(url: string, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: unknown[] };
  if (body.errors?.length || !body.data) throw new Error(`GraphQL request failed (${res.status}): ${JSON.stringify(body.errors ?? body)}`);
  return body.data;
}

export async function waitUntilReady(graphqlUrl: string, timeoutMs = 30_000): Promise<void> {
  const readyz = graphqlUrl.replace(/\/graphql$/, '/readyz');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(readyz).then((r) => r.status, () => 0);
    if (status === 200) return;
    if (Date.now() > deadline) throw new Error(`${readyz} still answers ${status} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
