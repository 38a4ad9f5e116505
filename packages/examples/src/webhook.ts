/**
 * The webhook domain: a webhook, the two ways its delivery can fail (the
 * receiver rejected it, or could not be reached), which of those are worth
 * retrying, and the dead letter written for a webhook the pool gave up on.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * One webhook: an event to tell the receiver about.
 *
 * @since 0.1.0
 */
export class Webhook extends Schema.Class<Webhook>("Webhook")({
  id: Schema.Int,
  event: Schema.String,
  orderId: Schema.String
}) {}

/**
 * The receiver answered with an HTTP status outside 2xx.
 *
 * @since 0.1.0
 */
export class WebhookRejected extends Schema.TaggedError<WebhookRejected>()("WebhookRejected", {
  message: Schema.String,
  webhookId: Schema.Int,
  status: Schema.Int
}) {}

/**
 * The request did not get an answer (connection refused, reset, ...).
 *
 * @since 0.1.0
 */
export class WebhookUnreachable extends Schema.TaggedError<WebhookUnreachable>()("WebhookUnreachable", {
  message: Schema.String,
  webhookId: Schema.Int
}) {}

/**
 * Whether a failed delivery is worth another attempt: the receiver was
 * unreachable, overloaded (429) or failing (5xx). Any other status is final.
 *
 * @since 0.1.0
 */
export const isRetryable = (error: WebhookRejected | WebhookUnreachable): boolean =>
  error._tag === "WebhookUnreachable" || error.status >= 500 || error.status === 429

/**
 * A webhook the pool gave up on, as written to the dead-letter file (one JSON
 * line each). `status` is the receiver's last HTTP status, `null` when the
 * last attempt got none (a timeout, an unreachable receiver).
 *
 * @since 0.1.0
 */
export class DeadLetter extends Schema.Class<DeadLetter>("DeadLetter")({
  webhook: Webhook,
  status: Schema.NullOr(Schema.Int),
  errorCode: Schema.String,
  errorMessage: Schema.String,
  attempts: Schema.Int
}) {}

/**
 * Reads and writes a dead letter as a line of JSON.
 *
 * @since 0.1.0
 */
export const DeadLetterJson = Schema.fromJsonString(DeadLetter)

/**
 * Encodes a webhook as the JSON body of its POST.
 *
 * @since 0.1.0
 */
export const webhookJson = Schema.encodeSync(Schema.fromJsonString(Webhook))
