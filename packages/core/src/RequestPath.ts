/**
 * The request path: the one service every provider call goes through, whether it is a line of
 * the experiment, a step of a strategy, a judge prompt or a rephrase prompt. It routes a request
 * to its queue (rate, token budget, concurrency, "slow down" pauses), sends it under the run's
 * timeout, retries what may be retried, and returns the completed record. It never fails: an
 * error the provider gave for good is a completed record with `error`.
 *
 * The seam for what later sits on the path (a response cache, a cost meter, a batch executor)
 * is `Middleware`: a function from the next `Send` to a `Send`, applied outermost first, before
 * the request waits for its queue. A middleware that answers by itself (a cache hit) takes no
 * send slot; one that calls `next` sees the completed record (usage, latency) to meter it.
 *
 * The path has a hot path for the run's plain lines (`sendNow`): when a provider `prepare`s its
 * request as a plain `Provider.Call`, the line's queue fiber takes the slot and starts the call,
 * and the call's callback completes the record, so a request costs no fiber and a few Effect
 * steps instead of about a hundred (most of the path's own CPU at thousands of requests a
 * second). It is the same path: the same queue, events, record and cost, and whatever is not an
 * answer is handed to `send`'s retry machinery as the first attempt. Strategies, middleware and
 * the send gate take `send`.
 *
 * @since 0.1.0
 */
import { Cause, Clock, Context, Effect, Either, type Fiber, FiberRef, Layer, Runtime, type Scope } from "effect"
import * as Dispatch from "./internal/dispatch.js"
import * as Pacer from "./internal/pacer.js"
import * as RequestTimeout from "./internal/requestTimeout.js"
import type { CompletedRecord, IdentifiedRecord } from "./PromptRecord.js"
import * as Provider from "./Provider.js"
import type { SchedulerEvent, SchedulerOptions } from "./Scheduler.js"

/**
 * Where a request goes: its queue key and that queue's limits.
 *
 * @since 0.1.0
 * @category models
 */
export type Route = Dispatch.Route

/**
 * One request: the record to send and, for a strategy, the name of the step it is.
 *
 * @since 0.1.0
 * @category models
 */
export interface Request {
  readonly record: IdentifiedRecord
  /** The strategy step (`sample 2`, `aggregate`, ...); absent for a line sent as it is. */
  readonly step?: string | undefined
  /** The queue to use instead of the one the path's `route` gives (a scheduler's own queues). */
  readonly route?: Route | undefined
  /**
   * The request was counted in its queue's total before the run began (a plain line of the
   * file); any other request announces itself with a `Queued` event.
   */
  readonly planned?: boolean | undefined
  /** The line this request belongs to (internal: given by the line runner; else the fiber's). */
  readonly ticket?: LineTicket | undefined
}

/**
 * Sends a request and gives its completed record (never fails).
 *
 * @since 0.1.0
 * @category models
 */
export type Send = (request: Request) => Effect.Effect<CompletedRecord>

/**
 * What a middleware may use besides the next `Send`: the run's event observer (a request a
 * middleware answers by itself still reports itself, so the statistics add up) and the route
 * of a request.
 *
 * @since 0.1.0
 * @category models
 */
export interface MiddlewareContext {
  readonly emit: (event: SchedulerEvent) => Effect.Effect<void>
  readonly route: (request: Request) => Route
}

/**
 * A layer of the request path: wraps the next `Send` (the cache, cost meter and batch executor
 * go here).
 *
 * @since 0.1.0
 * @category models
 */
export type Middleware = (next: Send, context: MiddlewareContext) => Send

/**
 * Completes a request without sending it (a cache hit, an estimate's stand-in answer) and reports
 * it as the path reports a sent one (`Queued` unless planned, then `Completed`), so the run's
 * statistics add up.
 *
 * @since 0.1.0
 * @category middleware
 */
export const answerHere = (
  context: MiddlewareContext,
  request: Request,
  completed: CompletedRecord
): Effect.Effect<CompletedRecord> =>
  Effect.gen(function*() {
    const route = context.route(request)
    if (request.planned !== true) {
      yield* context.emit({ _tag: "Queued", queue: route.key, queriesPerMinute: route.queriesPerMinute, id: request.record.id })
    }
    yield* context.emit({ _tag: "Completed", queue: route.key, record: completed, ok: completed.error === undefined })
    return completed
  })

/**
 * A check at the moment of sending, after the request has its queue's slot (the spend cap):
 * `open` gives a token for a request about to be sent, or `undefined` to give it up unsent (the
 * gate has stopped the run); `close` gets the token back with the completed record.
 *
 * @since 0.1.0
 * @category models
 */
export interface SendGate<T = unknown> {
  readonly open: (request: Request) => Effect.Effect<T | undefined>
  readonly close: (token: T, completed: CompletedRecord) => void
}

/**
 * A request sent by `sendNow` (internal: the line runner's), told how it ends.
 *
 * @internal
 */
export interface SendJob<A = CompletedRecord> {
  /** The completed record (once; never after the job was cancelled). */
  readonly done: (completed: A) => void
  /** The path failed (a subscriber threw): the run fails with it. */
  readonly defect: (cause: Cause.Cause<never>) => void
  /** How to cancel the request in flight from now on (the run ends before it is answered). */
  readonly track: (cancel: () => void) => void
}

/**
 * The service.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestPathService {
  readonly send: Send
  /** True once the run is stopping: new requests are given up without being sent. */
  readonly stopping: () => boolean
  /**
   * `send` for the line runner's hot path (internal), without a fiber per request: waits on the
   * caller's fiber for the request's slot, then sends it as its provider's prepared `Call` and
   * ends `job` from the call's callbacks. A request that takes another way (a retry, a provider
   * without `prepare`) is sent by `send` on a fiber of its own. `undefined` when the path has
   * middleware or a gate, whose work is effects: use `send`.
   *
   * @internal
   */
  readonly sendNow?: ((request: Request, job: SendJob) => Effect.Effect<void> | undefined) | undefined
}

/**
 * The request path of the current run.
 *
 * @since 0.1.0
 * @category tags
 */
export class RequestPath extends Context.Tag("@prompto/core/RequestPath")<RequestPath, RequestPathService>() {}

/**
 * How the path routes, paces and retries.
 *
 * @since 0.1.0
 * @category models
 */
export interface RequestPathOptions extends SchedulerOptions {
  /** The queue of a request that names none (see `QueuePlan.route`). */
  readonly route: (record: IdentifiedRecord) => Route
  /** Wrappers of the path, outermost first. */
  readonly middleware?: ReadonlyArray<Middleware> | undefined
  /** Completes at a stop (with `stopping`): requests waiting for their slot are given up at once. */
  readonly stopped?: Effect.Effect<void> | undefined
  /** Queues known in advance, made at once (others are made on first use). */
  readonly queues?: ReadonlyArray<Route> | undefined
  /** Checked as each request is sent (see `SendGate`). */
  readonly gate?: SendGate<any> | undefined
}

/**
 * The line a request belongs to, as the line runner sees it (internal). A line's requests made
 * before its first one is admitted (its first step, or its parallel samples) wait in their
 * queue's line like any new work; the first one admitted lets the runner start another line.
 * Every request the line makes after that (a strategy's next step) goes ahead of new lines, so
 * lines already started finish first and memory stays bounded.
 *
 * @internal
 */
export interface LineTicket {
  /** 0: no request yet; 1: the first is waiting for its slot; 2: the first was admitted. */
  state: 0 | 1 | 2
  /** The first request was admitted: the runner may start another line. */
  admitted(): void
}

/**
 * The current line's ticket (set by the line runner).
 *
 * @internal
 */
export const lineTicket: FiberRef.FiberRef<LineTicket | undefined> = FiberRef.unsafeMake<LineTicket | undefined>(
  undefined
)

/**
 * A further observer of the events of requests sent from this fiber (a linked run writes its
 * requests' retries and errors to its own log).
 *
 * @since 0.1.0
 * @category context
 */
export const eventTap: FiberRef.FiberRef<((event: SchedulerEvent) => Effect.Effect<void>) | undefined> = FiberRef
  .unsafeMake<((event: SchedulerEvent) => Effect.Effect<void>) | undefined>(undefined)

/**
 * Makes the path: pacers are made on first use per queue key and live as long as the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: RequestPathOptions
): Effect.Effect<RequestPathService, never, Scope.Scope | Provider.ProviderRegistry> =>
  Effect.gen(function*() {
    const registry = yield* Provider.registry
    const scope = yield* Effect.scope
    const pacerFor = yield* Dispatch.pacerPool(scope, options)
    // at a stop, requests waiting for a slot learn at once that they will not be sent
    if (options.stopped !== undefined) {
      yield* options.stopped.pipe(
        Effect.zipRight(Effect.suspend(() => Effect.forEach(pacerFor.all(), (pacer) => pacer.release, { discard: true }))),
        Effect.forkIn(scope)
      )
    }
    // made now, so the first requests of a queue are served in the order they come
    for (const route of options.queues ?? []) yield* pacerFor(route)
    const timeout = yield* RequestTimeout.make(options.timeout)
    const emit = options.onEvent ?? (() => Effect.void)
    const stopping = options.stopping ?? (() => false)
    const abandoned = (record: IdentifiedRecord): CompletedRecord =>
      Dispatch.withResponse(record, Either.left(Dispatch.stoppedError), {
        sentAt: 0,
        receivedAt: 0,
        attempts: 0,
        maxAttempts: options.maxAttempts
      })
    const paced: Send = (request) =>
      Effect.gen(function*() {
        const { record } = request
        if (stopping()) return abandoned(record)
        const target = request.route ?? options.route(record)
        const pacer = yield* pacerFor(target)
        const tap = yield* FiberRef.get(eventTap)
        const emitHere = tap === undefined ? emit : (event: SchedulerEvent) => Effect.zipRight(emit(event), tap(event))
        if (request.planned !== true) {
          yield* emitHere({ _tag: "Queued", queue: target.key, queriesPerMinute: target.queriesPerMinute, id: record.id })
        }
        const ticket = request.ticket ?? (yield* FiberRef.get(lineTicket))
        const first = ticket !== undefined && ticket.state === 0
        if (first) ticket.state = 1
        yield* Dispatch.admit(record, pacer, ticket === undefined || ticket.state === 2)
        if (first) ticket.admitted()
        // a request admitted after a stop is not sent
        if (stopping()) return abandoned(record)
        const gate = options.gate
        if (gate === undefined) return yield* Dispatch.dispatch(record, { key: target.key, pacer, timeout }, options, registry, emitHere)
        const token = yield* gate.open(request)
        if (token === undefined) return abandoned(record)
        const completed = yield* Dispatch.dispatch(record, { key: target.key, pacer, timeout }, options, registry, emitHere).pipe(
          Effect.onInterrupt(() => Effect.sync(() => gate.close(token, abandoned(record))))
        )
        gate.close(token, completed)
        return completed
      })
    const context: MiddlewareContext = { emit, route: (request) => request.route ?? options.route(request.record) }
    const send = (options.middleware ?? []).reduceRight<Send>((next, middleware) => middleware(next, context), paced)
    // the hot path: no middleware or gate (whose work is effects), and events that can be
    // published at once
    const direct = (options.middleware ?? []).length === 0 && options.gate === undefined &&
      (options.onEvent === undefined || options.onEventNow !== undefined)
    if (!direct) return { send, stopping }
    const publishNow = options.onEventNow
    const sendNow = (request: Request, job: SendJob): Effect.Effect<void> | undefined => {
      // a plain line of a queue known from the start (a strategy's steps take `send`)
      if (request.planned !== true || request.step !== undefined) return undefined
      const { record } = request
      const prepare = registry.get(record.api)?.prepare
      if (prepare === undefined) return undefined
      const target = request.route ?? options.route(record)
      const pacer = pacerFor.made(target.key)
      // a queue with a cap on requests in flight or a token budget settles them with effects
      if (pacer === undefined || pacer.inFlight !== undefined || pacer.tokens !== undefined) return undefined
      const queue = { key: target.key, pacer, timeout }
      return Effect.withFiberRuntime<void>((fiber) => {
        // the request on a fiber of its own, under the caller's services and settings
        const fork = (effect: Effect.Effect<CompletedRecord>): void => {
          const forked = Runtime.runFork(runtimeOf(fiber))(effect)
          job.track(() => forked.unsafeInterruptAsFork(fiber.id()))
          forked.addObserver((exit) => {
            if (exit._tag === "Success") job.done(exit.value)
            else if (!Cause.isInterruptedOnly(exit.cause)) job.defect(exit.cause as Cause.Cause<never>)
          })
        }
        if (fiber.getFiberRef(eventTap) !== undefined) return Effect.sync(() => fork(paced(request)))
        const emitNow = publishNow === undefined ? undefined : (event: SchedulerEvent): void => {
          const rest = publishNow(event)
          if (rest !== undefined) Runtime.runFork(runtimeOf(fiber))(rest)
        }
        const sendCall = (call: Provider.Call): Effect.Effect<void> => {
          const ticket = request.ticket
          const first = ticket !== undefined && ticket.state === 0
          if (first) ticket.state = 1
          const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
          const go = (): void => {
            if (first) ticket.admitted()
            // a request admitted after a stop is not sent
            if (stopping()) return job.done(abandoned(record))
            const sentAt = clock.unsafeCurrentTimeMillis()
            emitNow?.({ _tag: "Sent", queue: target.key, id: record.id, attempt: 1, at: sentAt })
            job.track(Dispatch.dispatchCall(record, queue, call, sentAt, clock, options, {
              emit: emitNow ?? (() => {}),
              done: (completed) => job.done(completed),
              // the retries, pauses and error records are `dispatch`'s
              failed: (error) => fork(Dispatch.dispatch(record, queue, options, registry, emit, { error, sentAt })),
              defect: (defect) => job.defect(Cause.die(defect))
            }))
          }
          // a slot due now (with no rate limit, every one) is taken without an effect
          if (pacer.claimNow(Pacer.preciseNow(clock))) {
            go()
            return Effect.void
          }
          return Effect.map(ticket === undefined || ticket.state === 2 ? pacer.takeUrgent : pacer.take, go)
        }
        // a record `prepare` fails on or gives no call for is sent by `send`, which meets the
        // same failure (or the provider's other way) in its place
        return Effect.matchEffect(prepare(record), {
          onFailure: () => Effect.sync(() => fork(paced(request))),
          onSuccess: (call) => (call === undefined ? Effect.sync(() => fork(paced(request))) : sendCall(call))
        })
      })
    }
    return { send, stopping, sendNow }
  })

/** A runtime with a fiber's services and settings, for the fibers started on its behalf. */
const runtimeOf = (fiber: Fiber.RuntimeFiber<unknown, unknown>): Runtime.Runtime<never> =>
  Runtime.make({ context: fiber.currentContext, fiberRefs: fiber.getFiberRefs(), runtimeFlags: Runtime.defaultRuntimeFlags })

/**
 * The path as a layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: RequestPathOptions): Layer.Layer<RequestPath, never, Provider.ProviderRegistry> =>
  Layer.scoped(RequestPath, make(options))

/**
 * Sends a record through the current request path.
 *
 * @since 0.1.0
 * @category sending
 */
export const send = (record: IdentifiedRecord, step?: string): Effect.Effect<CompletedRecord, never, RequestPath> =>
  Effect.flatMap(RequestPath, (path) => path.send({ record, step }))

/**
 * Whether a completed record is a request given up by a graceful stop: it was not answered, and
 * nothing built from it is written, so a resume sends it again.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isAbandoned = Dispatch.isAbandoned
