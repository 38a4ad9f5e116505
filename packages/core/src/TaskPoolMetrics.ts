/**
 * The names of the metrics every pool reports, for dashboards and alerts.
 * Each series carries the attribute `pool`, the config's `name`. Counters and
 * gauges are read from the pool's state when metrics are snapshotted;
 * histograms are in milliseconds.
 *
 * @since 0.1.0
 */

/**
 * Counters: `pushed`, `succeeded`, `failed`, `retriedAttempts`,
 * `droppedFailures`, `rejectedPushes`. Gauges: `lingering`, `queued`,
 * `running` (as in the stats: attempts and callbacks), `retrying`, `ending`
 * (callbacks running, also counted in `running`). Histograms: `attemptDuration` (each attempt),
 * `queueWait` (push to first start), `taskDuration` (push to end).
 *
 * @since 0.1.0
 */
export const metricNames = {
  pushed: "taskpool_tasks_pushed",
  succeeded: "taskpool_tasks_succeeded",
  failed: "taskpool_tasks_failed",
  retriedAttempts: "taskpool_attempts_retried",
  droppedFailures: "taskpool_failures_dropped",
  rejectedPushes: "taskpool_pushes_rejected",
  lingering: "taskpool_tasks_lingering",
  queued: "taskpool_tasks_queued",
  running: "taskpool_tasks_running",
  retrying: "taskpool_tasks_retrying",
  ending: "taskpool_tasks_ending",
  attemptDuration: "taskpool_attempt_duration_ms",
  queueWait: "taskpool_queue_wait_ms",
  taskDuration: "taskpool_task_duration_ms"
} as const

