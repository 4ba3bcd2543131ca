/**
 * The live inspector of a process serving several agents (`WorkerGroup`), in real headless
 * Chromium: one tab per agent, each showing that agent's worker chart and job processes.
 * Screenshots go to test-artifacts/inspector/.
 */
import { mkdir } from 'node:fs/promises';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInspector, type Inspector } from '../../src/inspector/index.ts';
import { WorkerGroup, WorkerOptions } from '../../src/index.ts';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { scriptedAgent } from '../support/emulated-worker.ts';

const ARTIFACTS = 'test-artifacts/inspector';

let emu: Emulator;
let inspector: Inspector;
let browser: Browser;

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  emu = await startEmulator({ defaultWaitMs: 20_000 });
  inspector = await startInspector();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await inspector?.close();
  await emu?.close();
});

const agent = (agentName: string) =>
  new WorkerOptions({
    entrypointFnc: () => undefined,
    agentModule: scriptedAgent,
    agentName,
    numIdleProcesses: 1,
    // On two shared cores a process started from sources can take seconds to warm: a prewarm
    // timeout would back off and keep the agent full, which is not what this page test is about.
    initializeProcessTimeout: 30_000,
    loadFnc: () => 0,
    wsUrl: emu.url,
    apiKey: emu.apiKey,
    apiSecret: emu.apiSecret,
  });

describe('inspector page for several agents (headless Chromium, emulator)', () => {
  it('shows one tab per agent, and each tab that agent’s worker chart and processes', async () => {
    const group = new WorkerGroup(
      [agent('front-desk'), agent('billing')],
      { loadFnc: () => 0 },
      { handleSignals: false, mode: 'development', inspect: inspector.inspect },
    );
    const done = group.run().catch(() => undefined);
    try {
      const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
      await page.goto(inspector.url);
      const tabs = page.locator('#agents .agent-tab');
      await expect.poll(() => tabs.count(), { timeout: 20_000 }).toBe(2);
      await page
        .locator('.agent-tab[data-agent="billing"] .pill', { hasText: /^available$/ })
        .waitFor({ timeout: 20_000 });
      await page
        .locator('.agent-tab[data-agent="front-desk"] .pill', { hasText: /^available$/ })
        .waitFor({ timeout: 20_000 });
      await expect
        .poll(() => page.locator('#worker-chart-title').textContent())
        .toBe('worker · front-desk');

      // A job for billing: its tab shows billing's chart and its running job process.
      emu.createDispatch({ room: 'billing-room', agentName: 'billing', metadata: 'sleep:3000' });
      await page.locator('.agent-tab[data-agent="billing"]').click();
      await expect
        .poll(() => page.locator('#worker-chart-title').textContent())
        .toBe('worker · billing');
      await expect
        .poll(() => page.locator('#proc-chart-title small').textContent(), { timeout: 20_000 })
        .toMatch(/room billing-room/);
      await expect
        .poll(() => page.locator('#proc-chart [data-state="jobProcess.running"].active').count(), {
          timeout: 20_000,
        })
        .toBe(1);
      await page.screenshot({ path: `${ARTIFACTS}/04-two-agents-billing.png` });

      // Back on front-desk: its own (idle) process, not billing's job.
      await page.locator('.agent-tab[data-agent="front-desk"]').click();
      await expect
        .poll(() => page.locator('#proc-chart-title small').textContent())
        .not.toMatch(/billing-room/);
      await expect.poll(() => page.locator('#stat-jobs').textContent()).toBe('0');
    } finally {
      await group.stop('test over');
      await done;
    }
  });
});
