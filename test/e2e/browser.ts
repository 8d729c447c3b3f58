/**
 * A real browser for tests: Debian's Chromium driven by playwright-core through its executable
 * path (nothing is downloaded). Opening a page records its console errors and every request that
 * is not `file:` or `data:`, and aborts those requests.
 */
import * as fs from "node:fs"
import { type Browser, chromium, type Page } from "playwright-core"

/** Where Chromium is: `PROMPTO_CHROMIUM`, else Debian's `/usr/bin/chromium` (or `chromium-browser`). */
export const chromiumPath = (): string =>
  process.env.PROMPTO_CHROMIUM ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((file) => fs.existsSync(file)) ??
    "/usr/bin/chromium"

/**
 * Starts headless Chromium (as root in a container, hence `--no-sandbox`); throws an error
 * saying how to install it when it cannot start, so a test fails instead of skipping.
 */
export const launch = async (): Promise<Browser> => {
  const executablePath = chromiumPath()
  try {
    return await chromium.launch({ executablePath, args: ["--no-sandbox", "--headless=new"], timeout: 60_000 })
  } catch (error) {
    throw new Error(
      `cannot start Chromium at ${executablePath}: install Debian's package (apt-get install -y chromium; .ci/run does) ` +
        `or set PROMPTO_CHROMIUM to a Chromium binary. The error was: ${error instanceof Error ? error.message : String(error)}`
    )
  }
}

/** A page opened with `open`, and what it did. */
export interface Visit {
  readonly page: Page
  /** Console errors and uncaught exceptions, in order. */
  readonly errors: Array<string>
  /** Requests to anything but `file:` and `data:` URLs (all aborted). */
  readonly requests: Array<string>
  /** From navigation start until the page set `body[data-ready]`. */
  readonly openMs: number
}

const local = (url: string): boolean => url.startsWith("file:") || url.startsWith("data:")

/** Opens `file` from `file://` in a new page and waits for the page to say it is drawn. */
export const open = async (
  browser: Browser,
  file: string,
  options: { readonly width?: number; readonly height?: number; readonly timeoutMs?: number } = {}
): Promise<Visit> => {
  const page = await browser.newPage({ viewport: { width: options.width ?? 1280, height: options.height ?? 900 } })
  const errors: Array<string> = []
  const requests: Array<string> = []
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(message.text())
  })
  page.on("pageerror", (error) => errors.push(error.message))
  page.on("request", (request) => {
    if (!local(request.url())) requests.push(request.url())
  })
  await page.route("**/*", (route) => (local(route.request().url()) ? route.continue() : route.abort()))
  const started = performance.now()
  await page.goto(`file://${file}`)
  await page.waitForSelector("body[data-ready=true]", { timeout: options.timeoutMs ?? 30_000 })
  return { page, errors, requests, openMs: performance.now() - started }
}
