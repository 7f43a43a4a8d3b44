import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/** Lints a would-be file at `filePath` with the project's own configuration (eslint.config.js). */
async function restrictedImports(filePath: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ cwd: process.cwd() });
  const [result] = await eslint.lintText(code, { filePath, warnIgnored: true });
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

// The first lint builds the TypeScript program for the typed rules: tens of seconds on a busy machine.
describe('the direction of imports', { timeout: 120_000 }, () => {
  it.each([
    ['src/services/lab.service.ts', "import { buildContext } from '../graphql/context.js';\nvoid buildContext;\n"],
    ['src/services/lab.service.ts', "import { attachWebSockets } from '../ws/server.js';\nvoid attachWebSockets;\n"],
    ['src/k8s/client.ts', "import { LabInstance } from '../entities/index.js';\nvoid LabInstance;\n"],
    ['src/k8s/templates/instance.ts', "import { parseId } from '../../services/ids.js';\nvoid parseId;\n"],
    ['src/entities/lab.entity.ts', "import { parseId } from '../services/ids.js';\nvoid parseId;\n"],
    ['src/resolvers/lab.resolver.ts', "import { KubeClient } from '../k8s/client.js';\nvoid KubeClient;\n"],
    ['src/app.ts', "import { startSimulatedCluster } from './simulated/index.js';\nvoid startSimulatedCluster;\n"],
    ['src/simulated/cluster.ts', "import { loadConfig } from '../config.js';\nvoid loadConfig;\n"],
  ])('refuses a wrong import in %s', async (file, code) => {
    expect(await restrictedImports(file, code)).toHaveLength(1);
  });

  it.each([
    ['src/resolvers/lab.resolver.ts', "import { LabService } from '../services/lab.service.js';\nvoid LabService;\n"],
    ['src/services/lab-instance.service.ts', "import { KubeClient } from '../k8s/client.js';\nvoid KubeClient;\n"],
    ['src/k8s/client.ts', "import { loadConfig } from '../config.js';\nvoid loadConfig;\n"],
    ['src/app.ts', "import type { SimulatedCluster } from './simulated/index.js';\nexport type S = SimulatedCluster;\n"],
  ])('accepts an import that follows the direction in %s', async (file, code) => {
    expect(await restrictedImports(file, code)).toEqual([]);
  });
});
