/**
 * The live inspector in real headless Chromium: a dev worker (real job processes) against the
 * emulator, watched through the page. Screenshots go to test-artifacts/inspector/.
 */
import { mkdir } from 'node:fs/promises';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInspector, type Inspector } from '../../src/inspector/index.ts';
import { Worker, WorkerOptions } from '../../src/index.ts';
import { startEmulator, type Emulator } from '../../src/testing/index.ts';
import { scriptedAgent } from '../support/emulated-worker.ts';

const ARTIFACTS = 'test-artifacts/inspector';
// Distinctive, so finding it anywhere in the page or its traffic is unambiguous.
const API_SECRET = 'inspector-e2e-sEcReT-7f3a9c41d2';

let emu: Emulator;
let inspector: Inspector;
let browser: Browser;
/** Everything the browser received: HTTP bodies and WebSocket frames. */
const traffic: string[] = [];

beforeAll(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  emu = await startEmulator({ keys: { inspectorkey: API_SECRET }, defaultWaitMs: 20_000 });
  inspector = await startInspector({ secrets: [API_SECRET] });
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await inspector?.close();
  await emu?.close();
});

async function openPage(): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  page.on('response', (res) => {
    res.text().then(
      (body) => traffic.push(body),
      () => undefined,
    );
  });
  page.on('websocket', (ws) => {
    ws.on('framereceived', (f) => traffic.push(String(f.payload)));
    ws.on('framesent', (f) => traffic.push(String(f.payload)));
  });
  await page.goto(inspector.url);
  return page;
}

/** The worker's state pill in the header. */
async function statusIs(page: Page, state: string, timeout: number): Promise<void> {
  await page.locator('#worker-status', { hasText: new RegExp(`^${state}$`) }).waitFor({ timeout });
}

/** A row of the actor tree whose state matches `state` (and whose text matches `detail`). */
function actorRow(page: Page, state: RegExp, detail?: RegExp) {
  const rows = page.locator('.actor', { has: page.locator('.state', { hasText: state }) });
  return (detail ? rows.filter({ hasText: detail }) : rows).first();
}

describe('inspector page (headless Chromium, dev worker on the emulator)', () => {
  it('shows the worker available, a job process running and back, and never the secret', async () => {
    const inspected = new Worker(
      new WorkerOptions({
        entrypointFnc: () => undefined,
        agentModule: scriptedAgent,
        agentName: 'watched',
        numIdleProcesses: 1,
        loadFnc: () => 0.2,
        loadThreshold: 0.7,
        wsUrl: emu.url,
        apiKey: 'inspectorkey',
        apiSecret: API_SECRET,
      }),
      // What `agent dev` does: development mode, the inspector's `inspect` on the worker actor.
      { handleSignals: false, mode: 'development', inspect: inspector.inspect },
    );
    const done = inspected.run().catch(() => undefined);
    try {
      const page = await openPage();
      await statusIs(page, 'available', 20_000);
      await expect
        .poll(() =>
          page.locator('[data-state="worker.lifecycle.registered.available"].active').count(),
        )
        .toBe(1);
      // A warm process is idle and shown in the tree with its pid.
      await actorRow(page, /^idle$/, /pid \d+/).waitFor({ timeout: 20_000 });
      await page.screenshot({ path: `${ARTIFACTS}/01-available.png` });

      emu.createDispatch({ room: 'inspected-room', agentName: 'watched', metadata: 'sleep:2500' });
      await actorRow(page, /^running/, /room inspected-room/).waitFor({ timeout: 20_000 });
      await expect
        .poll(() => page.locator('#proc-chart [data-state="jobProcess.running"].active').count())
        .toBe(1);
      await expect.poll(() => page.locator('#stat-jobs').textContent()).toBe('1');
      await page.screenshot({ path: `${ARTIFACTS}/02-job-running.png` });
      await page
        .locator('#proc-chart')
        .screenshot({ path: `${ARTIFACTS}/02-job-process-chart.png` });

      // The job returns: its process leaves `running` for `finished`, the slot is free again.
      await actorRow(page, /^finished$/).waitFor({ timeout: 20_000 });
      await expect.poll(() => page.locator('#stat-jobs').textContent()).toBe('0');
      // The chart follows the newest live process; clicking the finished one pins it.
      await actorRow(page, /^finished$/).click();
      await expect
        .poll(() => page.locator('#proc-chart [data-state="jobProcess.finished"].active').count())
        .toBe(1);
      // The timeline shows what happened, and its filter narrows it.
      await expect
        .poll(() => page.locator('#events .type', { hasText: 'JOB_ENDED' }).count())
        .toBeGreaterThan(0);
      await page.fill('#filter-text', 'PROCESS_EXITED');
      await expect
        .poll(() => page.locator('#events .type').allTextContents())
        .toSatisfy(
          (types: string[]) => types.length > 0 && types.every((t) => t === 'PROCESS_EXITED'),
        );
      await page.fill('#filter-text', '');
      await page.screenshot({ path: `${ARTIFACTS}/03-job-finished.png` });

      // A browser that joins late gets the current picture at once.
      const late = await openPage();
      await statusIs(late, 'available', 10_000);
      await expect
        .poll(() => late.locator('#events li').count(), { timeout: 10_000 })
        .toBeGreaterThan(5);

      const html = (await page.content()) + (await late.content());
      expect(html).not.toContain(API_SECRET);
      expect(traffic.length).toBeGreaterThan(10);
      expect(traffic.join('\n')).not.toContain(API_SECRET);
      // Job tokens (JWTs signed with the secret) are redacted too.
      expect(traffic.join('\n')).not.toMatch(/eyJ[\w-]+\.[\w-]+\.[\w-]+/);
    } finally {
      await inspected.stop('test over');
      await done;
    }
  });
});
