// `npm run test:cluster`: the lab-instance tests against a real cluster (kind or k3s with KubeVirt).
import { spawnSync } from 'node:child_process';

if (!process.env.KUBECONFIG) {
  console.log('test:cluster: skipped: no KUBECONFIG given. Point KUBECONFIG at a kind or k3s cluster with KubeVirt (see the README).');
  process.exit(0);
}
const result = spawnSync('npx', ['vitest', 'run', '--config', 'vitest.cluster.config.ts'], { stdio: 'inherit' });
process.exit(result.status ?? 1);
