import { RESOURCES, type ResourceDef } from './resources.js';

/** The legacy discovery documents (kubectl falls back to them when aggregated discovery is not offered). */

export const SERVER_VERSION = {
  major: '1', minor: '30', gitVersion: 'v1.30.0', gitCommit: '0000000000000000000000000000000000000000',
  gitTreeState: 'clean', buildDate: '2024-04-17T00:00:00Z', goVersion: 'go1.22.2', compiler: 'gc', platform: 'linux/amd64',
};

function groups(): Map<string, ResourceDef[]> {
  const byGroupVersion = new Map<string, ResourceDef[]>();
  for (const def of RESOURCES) {
    if (!def.group) continue;
    const key = `${def.group}/${def.version}`;
    byGroupVersion.set(key, [...(byGroupVersion.get(key) ?? []), def]);
  }
  return byGroupVersion;
}

function apiGroup(name: string, version: string): Record<string, unknown> {
  const gv = { groupVersion: `${name}/${version}`, version };
  return { name, versions: [gv], preferredVersion: gv };
}

function resourceList(groupVersion: string, defs: ResourceDef[]): Record<string, unknown> {
  const resources = defs.map((d) => ({
    name: d.plural, singularName: d.singular, namespaced: d.namespaced, kind: d.kind, verbs: d.verbs,
    ...(d.shortNames.length ? { shortNames: d.shortNames } : {}),
    ...(d.plural === 'pods' || d.plural === 'virtualmachineinstances' ? { categories: ['all'] } : {}),
  }));
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
}

/** Answers a discovery path, or undefined when the path is not a discovery document. */
export function discovery(path: string, serverAddress: string): unknown {
  if (path === '/version') return SERVER_VERSION;
  if (path === '/api') {
    return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] };
  }
  if (path === '/api/v1') return resourceList('v1', RESOURCES.filter((d) => !d.group));
  const byGv = groups();
  if (path === '/apis') {
    const list = [...byGv.keys()].map((gv) => apiGroup(gv.split('/')[0], gv.split('/')[1]));
    return { kind: 'APIGroupList', apiVersion: 'v1', groups: list };
  }
  const m = /^\/apis\/([^/]+)(?:\/([^/]+))?$/.exec(path);
  if (!m) return undefined;
  const [, group, version] = m;
  const found = [...byGv.entries()].find(([gv]) => gv.startsWith(`${group}/`));
  if (!found) return undefined;
  if (!version) return { kind: 'APIGroup', apiVersion: 'v1', ...apiGroup(group, found[0].split('/')[1]) };
  const defs = byGv.get(`${group}/${version}`);
  return defs ? resourceList(`${group}/${version}`, defs) : undefined;
}
