// Drives one headless Chromium (Debian's, through playwright-core: no browser download)
// for browser_test.py: one JSON request a line on stdin, one JSON answer a line on stdout.
//   {"id": 1, "op": "newPage", "page": "a", "url": "http://..."}   -> {"id": 1, "ok": true}
// Ops: newPage, eval (an expression, awaited), waitFor (an expression until truthy),
// offline (the page's network), screenshot, closePage. One browser serves every page.
import { createInterface } from "node:readline";

import { type Browser, type BrowserContext, type Page, chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";

type Request = { id: number; op: string; page?: string; [key: string]: unknown };

const pages = new Map<string, { context: BrowserContext; page: Page; console: string[] }>();
const state: { browser: Browser | null } = { browser: null };

async function launch(): Promise<Browser> {
  state.browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  return state.browser;
}

function pageOf(request: Request): { context: BrowserContext; page: Page; console: string[] } {
  const entry = pages.get(String(request.page));
  if (entry === undefined) throw new Error(`no page ${request.page}`);
  return entry;
}

async function handle(request: Request): Promise<unknown> {
  switch (request.op) {
    case "newPage": {
      const context = await (await launch()).newContext({ viewport: { width: 1100, height: 760 } });
      const page = await context.newPage();
      const console: string[] = [];
      page.on("console", (message) => console.push(`${message.type()}: ${message.text()}`));
      page.on("pageerror", (error) => console.push(`pageerror: ${error.message}`));
      pages.set(String(request.page), { context, page, console });
      await page.goto(String(request.url), { waitUntil: "load" });
      return null;
    }
    case "eval":
      return await pageOf(request).page.evaluate(`(async () => (${String(request.js)}))()`);
    case "waitFor": {
      const { page, console } = pageOf(request);
      try {
        await page.waitForFunction(String(request.js), null, {
          timeout: Number(request.timeout ?? 20000),
          polling: 50,
        });
      } catch (error) {
        throw new Error(`${(error as Error).message}\nconsole:\n${console.slice(-20).join("\n")}`);
      }
      return null;
    }
    case "offline":
      await pageOf(request).context.setOffline(Boolean(request.value));
      return null;
    case "screenshot":
      await pageOf(request).page.screenshot({ path: String(request.path), fullPage: true });
      return null;
    case "closePage": {
      const entry = pages.get(String(request.page));
      pages.delete(String(request.page));
      await entry?.context.close();
      return null;
    }
    default:
      throw new Error(`unknown op ${request.op}`);
  }
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  const request = JSON.parse(line) as Request;
  try {
    const value = await handle(request);
    process.stdout.write(JSON.stringify({ id: request.id, ok: true, value: value ?? null }) + "\n");
  } catch (error) {
    process.stdout.write(JSON.stringify({ id: request.id, ok: false, error: String(error) }) + "\n");
  }
}
await state.browser?.close();
