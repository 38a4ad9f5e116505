/**
 * The local receiver: the webhook example's stand-in for a customer's
 * endpoint, an HTTP server on 127.0.0.1 at a random port. It answers each
 * webhook by its id alone (see `behaviourOf`): some 200, some 400 (never
 * retry), some 503 a couple of times first, some too slowly the first time.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import { once } from "node:events"
import { createServer } from "node:http"
import type { IncomingMessage, ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"

/**
 * How the receiver treats a webhook, decided by its id alone:
 * - ids ending in 3 are `"rejected"`: always 400;
 * - ids ending in 5 or 8 are `"unavailable"`: 503 twice, then 200;
 * - ids ending in 7 are `"slow"`: the first answer comes after `slowMs`, later ones at once;
 * - every other id is `"ok"`: 200.
 *
 * @since 0.1.0
 */
export const behaviourOf = (id: number): "ok" | "rejected" | "unavailable" | "slow" => {
  switch (id % 10) {
    case 3:
      return "rejected"
    case 5:
    case 8:
      return "unavailable"
    case 7:
      return "slow"
    default:
      return "ok"
  }
}

/**
 * What `startReceiver` accepts.
 *
 * @since 0.1.0
 */
export interface ReceiverOptions {
  /** How long a normal answer takes. */
  readonly latencyMs: number
  /** How long a slow webhook's first answer takes. */
  readonly slowMs: number
}

/**
 * How the receiver has answered so far.
 *
 * @since 0.1.0
 */
export interface ReceiverTally {
  /** Answers sent, by HTTP status. */
  readonly byStatus: Readonly<Record<number, number>>
  /** Requests the client gave up on (aborted) before the answer. */
  readonly aborted: number
}

/**
 * A running receiver: where to post, and how it has answered so far.
 *
 * @since 0.1.0
 */
export interface Receiver {
  readonly url: string
  readonly tally: Effect.Effect<ReceiverTally>
}

/**
 * Starts the receiver on 127.0.0.1 at a random port; it stops (dropping any
 * open connection) when the scope closes. It reads the webhook's id from the
 * `webhook-id` header and answers as `behaviourOf` says.
 *
 * @since 0.1.0
 */
export const startReceiver = (options: ReceiverOptions) =>
  Effect.gen(function*() {
    const byStatus: Record<number, number> = {}
    let aborted = 0
    const requestsById = new Map<number, number>()

    const answer = (request: IncomingMessage, response: ServerResponse) => {
      request.resume()
      const id = Number(request.headers["webhook-id"])
      const seen = (requestsById.get(id) ?? 0) + 1
      requestsById.set(id, seen)
      const behaviour = behaviourOf(id)
      const status = !Number.isInteger(id) || behaviour === "rejected"
        ? 400
        : behaviour === "unavailable" && seen <= 2
        ? 503
        : 200
      const timer = setTimeout(() => {
        byStatus[status] = (byStatus[status] ?? 0) + 1
        response.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? "ok" : "no")
      }, behaviour === "slow" && seen === 1 ? options.slowMs : options.latencyMs)
      response.on("close", () => {
        if (response.writableEnded) return
        clearTimeout(timer)
        aborted++
      })
    }

    const server = yield* Effect.acquireRelease(
      Effect.promise(async () => {
        const server = createServer(answer)
        server.listen(0, "127.0.0.1")
        await once(server, "listening")
        return server
      }),
      (server) =>
        Effect.promise(() => {
          server.closeAllConnections()
          return new Promise<void>((resolve) => server.close(() => resolve()))
        })
    )
    const { port } = server.address() as AddressInfo
    const receiver: Receiver = {
      url: `http://127.0.0.1:${port}/webhooks`,
      tally: Effect.sync(() => ({ byStatus: { ...byStatus }, aborted }))
    }
    return receiver
  })
