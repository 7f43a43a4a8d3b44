import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SimulatedCluster } from '../src/simulated/index.js';
import { CreateInstructionPageDocument, StartLabDocument, StopLabInstanceDocument } from './generated/graphql.js';
import { createLabWithVms } from './support/catalogue.js';
import { createAdmin, createUser, type TestUser } from './support/factories.js';
import { ENGINES, startTestServer, type TestServer } from './support/server.js';
import { eventually } from './support/wait.js';

/**
 * The built-in console page with a real noVNC in headless Chromium (Debian's, driven by
 * playwright-core; .ci/run installs it): the framebuffer read back from the canvas, typing, the VM
 * switcher, the instruction pages, and the end of access when the instance is stopped.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** What the callbacks run in the page use of the browser's globals (the tests compile without the DOM library). */
interface BrowserGlobals {
  sessionStorage: { setItem(key: string, value: string): void };
  location: { hash: string };
  document: { querySelector(s: string): { getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } } };
}

// The console's rendering needs one engine only: the database is not what this test is about.
const ENGINE = ENGINES.includes('sqlite') ? 'sqlite' : ENGINES[0];

describe.skipIf(!existsSync(CHROMIUM))('the console page in headless Chromium', () => {
  let server: TestServer;
  let cluster: SimulatedCluster;
  let admin: TestUser;
  let owner: TestUser;
  let lab: { id: string };
  let context: BrowserContext;
  let profile: string;
  const external: string[] = [];

  beforeAll(async () => {
    server = await startTestServer(ENGINE, { VNC_ACTIVITY_WRITE_SECONDS: '0.2' });
    cluster = server.app.simulated!;
    [admin, owner] = await Promise.all([createAdmin(server), createUser(server, { isTrusted: true })]);
    lab = (await createLabWithVms(admin.client, ['gateway', 'web'])).lab;
    await admin.client.ok(CreateInstructionPageDocument, { input: { labId: lab.id, title: 'Step 1: log in', content: 'Type your name into the gateway.' } });
    await admin.client.ok(CreateInstructionPageDocument, { input: { labId: lab.id, title: 'Step 2', content: '<h1>Web</h1><p>Open the <b>web</b> VM.</p>' } });
    // A fresh profile each run (the --user-data-dir), headless.
    profile = mkdtempSync(join(tmpdir(), 'lo-chromium-'));
    context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: FLAGS });
    const origin = new URL(server.url).origin;
    context.on('request', (req) => {
      if (!req.url().startsWith(origin) && !req.url().startsWith('data:') && !req.url().startsWith('blob:')) external.push(req.url());
    });
  }, 120_000);
  afterAll(async () => {
    await context?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
    await server?.stop();
  });

  /** Opens the console of a new instance as its owner, signed in (the session handed over as the lab's front end would). */
  async function openConsole(): Promise<{ page: Page; id: string; namespace: string }> {
    const { startLab } = await owner.client.ok(StartLabDocument, { labId: lab.id });
    const url = new URL(startLab.vncAccess.url);
    const page = await context.newPage();
    page.on('pageerror', (err) => console.error('page error:', err.message));
    await page.addInitScript((token) => {
      try {
        (globalThis as unknown as BrowserGlobals).sessionStorage.setItem('lab-orchestrator.session', token);
      } catch {
        // the instruction pages' sandboxed frames have no storage
      }
    }, owner.token);
    await page.goto(`${new URL(server.url).origin}/console/${url.hash}`);
    return { page, id: startLab.labInstance.id, namespace: startLab.labInstance.namespace };
  }

  /** Canvas pixels at these framebuffer points. */
  const pixels = (page: Page, points: number[][]) =>
    page.evaluate((pts) => {
      const canvas = (globalThis as unknown as BrowserGlobals).document.querySelector('#screen canvas');
      const ctx = canvas.getContext('2d');
      return pts.map(([x, y]) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3)));
    }, points);

  /** The same points of what the simulated VM shows. */
  function expected(namespace: string, vm: string, points: number[][]): number[][] {
    const fb = cluster.vncFramebuffer(namespace, vm);
    return points.map(([x, y]) => Array.from(fb.rgb.slice((y * fb.width + x) * 3, (y * fb.width + x) * 3 + 3)));
  }

  /** Points over the bars, the VM's name and the typed line. */
  const SAMPLES = [[5, 5], [120, 200], [790, 300], [26, 380], [40, 385], [64, 392], [96, 400], [130, 388], [30, 430], [60, 434]];

  it('shows the VM, types into it, switches VMs, and ends when the instance is stopped', async () => {
    const { page, id, namespace } = await openConsole();
    await page.waitForSelector('body[data-state="connected"][data-vm="gateway"]', { timeout: 20_000 });
    // The framebuffer, read back from noVNC's canvas, is the VM's test pattern with its name.
    await eventually(async () => expect(await pixels(page, SAMPLES)).toEqual(expected(namespace, 'gateway', SAMPLES)), 10_000, 100);
    expect(await pixels(page, [[5, 5]])).toEqual([[255, 255, 255]]);

    // The instruction pages, beside the console; HTML in a sandboxed frame.
    expect(await page.locator('#page-list button').allTextContents()).toEqual(['Step 1: log in', 'Step 2']);
    await expect.poll(() => page.locator('#page pre').textContent()).toBe('Type your name into the gateway.');
    await page.locator('#page-list button', { hasText: 'Step 2' }).click();
    expect(await page.locator('#page iframe').getAttribute('sandbox')).toBe('');

    // Live status from the subscription: both VMs ready.
    await page.waitForSelector('#vms button[data-vm="web"] .dot.ready', { timeout: 10_000 });

    // Typing on the canvas and through "send text": the VM receives the keys and its screen shows them.
    await page.locator('#screen canvas').click({ position: { x: 50, y: 50 } });
    await page.keyboard.type('ab');
    await page.locator('#text').fill('Cd1');
    await page.locator('#send-text button').click();
    await eventually(() => {
      const downs = cluster.vncInput(namespace, 'gateway').filter((e) => e.type === 'key' && e.down).map((e) => (e.type === 'key' ? e.keysym : 0));
      expect(downs.filter((k) => k !== 0xffe1)).toEqual([0x61, 0x62, 0x43, 0x64, 0x31]);
    });
    expect(cluster.vncInput(namespace, 'gateway').some((e) => e.type === 'pointer')).toBe(true);
    await eventually(async () => expect(await pixels(page, SAMPLES)).toEqual(expected(namespace, 'gateway', SAMPLES)), 10_000, 100);
    expect(cluster.vncFramebuffer(namespace, 'gateway').rgb).not.toEqual(cluster.vncFramebuffer(namespace, 'web').rgb);
    await eventually(async () => {
      const { labInstance } = await owner.client.ok<{ labInstance: { lastActivityAt: string | null } }, { id: string }>(
        'query ($id: ID!) { labInstance(id: $id) { lastActivityAt } }',
        { id },
      );
      expect(labInstance.lastActivityAt).not.toBeNull();
    });

    // The switcher opens the other VM.
    await page.locator('#vms button[data-vm="web"]').click();
    await page.waitForSelector('body[data-state="connected"][data-vm="web"]', { timeout: 10_000 });
    await eventually(async () => expect(await pixels(page, SAMPLES)).toEqual(expected(namespace, 'web', SAMPLES)), 10_000, 100);
    expect(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).location.hash)).toContain('%2Fweb');
    // CONSOLE_SCREENSHOT=file.png keeps a picture of the page, to look at.
    if (process.env.CONSOLE_SCREENSHOT) await page.screenshot({ path: process.env.CONSOLE_SCREENSHOT });

    // Stopping the instance ends the session, with a message saying so.
    await owner.client.ok(StopLabInstanceDocument, { id });
    await page.waitForSelector('body[data-state="ended"]', { timeout: 10_000 });
    expect(await page.locator('#message-text').textContent()).toContain('stopped');
    await eventually(() => expect(cluster.vncConnections(namespace)).toBe(0));
    await page.close();
    expect(external).toEqual([]);
  });

  it('says a VM is not running yet, and connects once it runs', async () => {
    cluster.setAutoProgress(false);
    let page: Page;
    try {
      ({ page } = await openConsole());
      await page.waitForSelector('body[data-state="waiting"]', { timeout: 10_000 });
      expect(await page.locator('#message-text').textContent()).toContain('not running yet');
    } finally {
      cluster.setAutoProgress(true);
    }
    await page.waitForSelector('body[data-state="connected"]', { timeout: 20_000 });
    await page.close();
  });
});
