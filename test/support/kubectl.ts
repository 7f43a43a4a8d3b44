import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The real kubectl, pointed at a (simulated) cluster: an independent client of its API. */
export function kubectl(serverUrl: string) {
  const dir = mkdtempSync(join(tmpdir(), 'lo-kubectl-'));
  const file = join(dir, 'config');
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: sim, cluster: {server: "' + serverUrl + '"}}]',
      'users: [{name: u, user: {}}]',
      'contexts: [{name: sim, context: {cluster: sim, user: u}}]',
      'current-context: sim',
      '',
    ].join('\n'),
  );
  return kubectlWith(file);
}

/** kubectl with a given kubeconfig file. */
export function kubectlWith(kubeconfig: string) {
  return async (...args: string[]) => (await run('kubectl', ['--kubeconfig', kubeconfig, '--request-timeout=30s', ...args])).stdout;
}
