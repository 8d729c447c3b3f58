/**
 * A slow loopback: an HTTP proxy on 127.0.0.1 (a free port) that holds every request for a fixed
 * latency, then forwards it to a loopback API server and passes the answer back. It records each
 * request the moment it arrives (what the client sent, whether or not it lived to see the answer),
 * so a test can count what a run sent even when the run was killed mid-request.
 */
import * as http from "node:http"
import type { AddressInfo } from "node:net"

/** One request as the proxy received it. */
export interface ProxiedRequest {
  readonly method: string
  readonly path: string
  /** The parsed JSON body (`undefined` if it was not JSON). */
  readonly body: unknown
}

export interface SlowProxy {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** Every request received, in arrival order. */
  readonly requests: ReadonlyArray<ProxiedRequest>
  readonly close: () => Promise<void>
}

const parse = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** Starts a proxy to `target` (`http://127.0.0.1:<port>`) that answers each request `latencyMs` late. */
export const start = (target: string, latencyMs: number): Promise<SlowProxy> =>
  new Promise((resolve, reject) => {
    const requests: Array<ProxiedRequest> = []
    const upstream = new URL(target)
    const server = http.createServer((req, res) => {
      const chunks: Array<Buffer> = []
      req.on("data", (chunk: Buffer) => chunks.push(chunk))
      req.on("end", () => {
        const body = Buffer.concat(chunks)
        requests.push({ method: req.method ?? "", path: req.url ?? "", body: parse(body.toString("utf8")) })
        let gone = false
        res.once("close", () => (gone = !res.writableFinished))
        setTimeout(() => {
          if (gone) return
          const forward = http.request({
            host: upstream.hostname,
            port: upstream.port,
            method: req.method,
            path: req.url,
            headers: { ...req.headers, host: upstream.host, "content-length": String(body.length) }
          }, (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers)
            answer.pipe(res)
          })
          forward.on("error", () => res.destroy())
          forward.end(body)
        }, latencyMs)
      })
    })
    server.on("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        requests,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections()
            server.close(() => done())
          })
      })
    })
  })
