/**
 * The bench's handle on its loopback OpenAI server: forks `server.ts` (through tsx) as its own
 * process and talks to it over IPC, to set each model's latency and rate limit, clear and fetch
 * what it recorded, read its clock, and close it.
 */
import { type ChildProcess, fork } from "node:child_process"
import * as path from "node:path"
import type { Command, ModelConfig, Recorded, Reply } from "./LoopbackProtocol.js"
import { benchDir, repoRoot } from "./Paths.js"

/** One request as the server saw it (epoch milliseconds). */
export interface ServedRequest {
  readonly model: string
  readonly arrivedAt: number
  /** `NaN` if it was never answered. */
  readonly answeredAt: number
  /** The answer's status (`NaN` if it was never answered). */
  readonly status: number
  /** The sender's stamp of when it sent the request (`x-sent-at`); `NaN` when it sent none. */
  readonly sentAt: number
}

/** What the server recorded since its last reset. */
export interface Served {
  readonly requests: ReadonlyArray<ServedRequest>
  /** TCP connections accepted. */
  readonly connections: number
  /** The server's CPU time, milliseconds: it must stay well below the wall to not be the bottleneck. */
  readonly cpuMs: number
}

/**
 * How the server's clock stands against the bench's: `offsetMs` = server − bench (both epoch
 * milliseconds from `performance.timeOrigin + performance.now()`), read over one IPC round trip,
 * so it is known to within `uncertaintyMs` (half that round trip).
 */
export interface ClockOffset {
  readonly offsetMs: number
  readonly uncertaintyMs: number
}

/** A running loopback server. */
export interface LoopbackServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** Sets the latency and rate limit of each model (unknown models answer at once). */
  readonly configure: (models: Readonly<Record<string, ModelConfig>>) => Promise<void>
  /** Forgets every recorded request and connection, and frees serial models. */
  readonly reset: () => Promise<void>
  /** The requests recorded since the last reset, in arrival order, and the connections opened. */
  readonly requests: () => Promise<Served>
  /** The server's clock against the bench's (the best of a few round trips). */
  readonly clockOffset: () => Promise<ClockOffset>
  readonly close: () => Promise<void>
}

interface Pending {
  readonly done: (reply: Reply) => void
  readonly fail: (error: Error) => void
}

/** Starts the server process and waits until it listens. */
export const start = (): Promise<LoopbackServer> =>
  new Promise((resolve, reject) => {
    const child: ChildProcess = fork(path.join(benchDir, "src", "server.ts"), [], {
      cwd: repoRoot,
      execArgv: ["--import", "tsx"],
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
    const pending = new Map<number, Pending>()
    let nextId = 1
    const send = (command: Omit<Command, "id">): Promise<Reply> =>
      new Promise((done, fail) => {
        const id = nextId++
        pending.set(id, { done, fail })
        child.send({ ...command, id }, (error) => {
          if (error !== null) {
            pending.delete(id)
            fail(error)
          }
        })
      })
    child.on("error", reject)
    child.on("exit", (code) => {
      const error = new Error(`the loopback server exited (code ${code})`)
      reject(error)
      for (const waiter of pending.values()) waiter.fail(error)
      pending.clear()
    })
    child.on("message", (reply: Reply) => {
      if (reply.type === "listening") {
        resolve(handle(reply.port))
        return
      }
      const waiter = pending.get(reply.id)
      pending.delete(reply.id)
      waiter?.done(reply)
    })
    const handle = (port: number): LoopbackServer => ({
      url: `http://127.0.0.1:${port}`,
      configure: async (models) => {
        await send({ type: "configure", models } as Omit<Command, "id">)
      },
      reset: async () => {
        await send({ type: "reset" })
      },
      requests: async () => {
        const reply = await send({ type: "records" })
        if (reply.type !== "records") throw new Error("the loopback server did not send its records")
        return { requests: toRequests(reply.recorded), connections: reply.recorded.connections, cpuMs: reply.recorded.cpuMs }
      },
      clockOffset: async () => {
        const bench = () => performance.timeOrigin + performance.now()
        let best: ClockOffset = { offsetMs: Number.NaN, uncertaintyMs: Infinity }
        for (let i = 0; i < 5; i++) {
          const sent = bench()
          const reply = await send({ type: "clock" })
          const received = bench()
          if (reply.type !== "clock") throw new Error("the loopback server did not send its clock")
          const uncertaintyMs = (received - sent) / 2
          if (uncertaintyMs < best.uncertaintyMs) best = { offsetMs: reply.now - (sent + uncertaintyMs), uncertaintyMs }
        }
        return best
      },
      close: () =>
        new Promise((done) => {
          if (child.exitCode !== null) return done()
          child.once("exit", () => done())
          child.send({ type: "close", id: 0 })
          setTimeout(() => child.kill("SIGKILL"), 5_000).unref()
        })
    })
  })

const toRequests = (recorded: Recorded): Array<ServedRequest> =>
  recorded.arrivedAt.map((arrivedAt, index) => {
    const model = recorded.modelOf[index]
    const answeredAt = recorded.answeredAt[index]
    const sentAt = recorded.sentAt[index]
    const status = recorded.status[index]
    return {
      model: model === null || model === undefined ? "" : recorded.models[model] ?? "",
      arrivedAt,
      answeredAt: answeredAt === null || answeredAt === undefined ? Number.NaN : answeredAt,
      status: status === null || status === undefined ? Number.NaN : status,
      sentAt: sentAt === null || sentAt === undefined ? Number.NaN : sentAt
    }
  })
