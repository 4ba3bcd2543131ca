import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Tests import agentstate (and the examples' `import 'agentstate'`) from its sources, not dist/.
const conditions = ['agentstate-source', ...defaultServerConditions];

// Two cores: files run in a small fork pool; e2e files each start their own livekit-server.
export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['agentstate-source'] } },
  test: {
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    globalSetup: ['test/support/global-setup.ts'],
    // Workers run in tests journal their jobs here (job recovery), not in the user's home.
    env: { AGENTSTATE_STATE_DIR: mkdtempSync(join(tmpdir(), 'agentstate-tests-')) },
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'] } },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], maxWorkers: 1 } },
      // The package as users get it: packed, installed into an empty project, run by plain node.
      {
        extends: true,
        test: {
          name: 'package',
          include: ['test/package/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts', 'test/package/packed-project.ts'],
          maxWorkers: 1,
        },
      },
    ],
  },
});
