/**
 * Summarises a V8 .cpuprofile (from --cpu-prof): self time by function and by package, to say where a
 * server's time goes. Usage: node dist/bench/support/profile-summary.js FILE.cpuprofile [TOP]
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** node_modules/<package> (scoped included), the project's own folder, or node's internals. */
function ownerOf(url: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  const own = /\/dist\/(src|bench|test)\/(.*)$/.exec(url);
  if (own) return `${own[1]}/${own[2].split('/')[0]}`;
  if (url.startsWith('node:')) return 'node internals';
  return url ? url.replace(/^file:\/\/.*\//, '') : '(native / GC / idle)';
}

/** Samples taken while the profiler itself was starting or stopping (server-process.ts) are not the server's work. */
function profilerNodes(profile: Profile): Set<number> {
  const out = new Set<number>();
  const visit = (id: number, inside: boolean, byId: Map<number, ProfileNode>) => {
    const node = byId.get(id)!;
    const now = inside || /^profile\.(start|stop)$/.test(node.callFrame.functionName);
    if (now) out.add(id);
    for (const child of node.children ?? []) visit(child, now, byId);
  };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  visit(profile.nodes[0].id, false, byId);
  return out;
}

export function summarize(profile: Profile, top = 25): string {
  const skip = profilerNodes(profile);
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    if (!skip.has(id)) selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const byFunction = new Map<string, number>();
  const byOwner = new Map<string, number>();
  let total = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    total += us;
    const where = frame.url ? `${ownerOf(frame.url)}:${frame.lineNumber + 1}` : '';
    const key = `${frame.functionName || '(anonymous)'} ${where}`.trim();
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    const owner = frame.functionName === '(idle)' ? '(idle)' : ownerOf(frame.url);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + us);
  }
  const busy = total - (byOwner.get('(idle)') ?? 0);
  const rows = (m: Map<string, number>) =>
    [...m.entries()]
      .filter(([k]) => k !== '(idle)' && !k.startsWith('(idle)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => `${((100 * us) / busy).toFixed(1).padStart(5)} %  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
  return [
    `busy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled`,
    '',
    'self time by package:',
    ...rows(byOwner),
    '',
    'self time by function:',
    ...rows(byFunction),
  ].join('\n');
}

if (process.argv[1]?.endsWith('profile-summary.js') && process.argv[2]) {
  const profile = JSON.parse(readFileSync(process.argv[2], 'utf8')) as Profile;
  console.log(summarize(profile, Number(process.argv[3] ?? 25)));
}
