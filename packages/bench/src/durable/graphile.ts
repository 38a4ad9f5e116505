/**
 * graphile-worker 0.18: `run()` with a task list of the same no-op task, in
 * its default `graphile_worker` schema, logging silenced; the producer is
 * `makeWorkerUtils().addJob`. Done jobs are deleted, so the rows left in
 * `_private_jobs` are the jobs not done.
 */
import { makeWorkerUtils, run } from "graphile-worker"
import { silentLogger } from "./postgres.js"
import type { System } from "./system.js"

const TASK = "bench-noop"

export const graphile: System = {
  producer: async ({ url }) => {
    const utils = await makeWorkerUtils({ connectionString: url, logger: silentLogger })
    try {
      await utils.migrate()
    } catch (error) {
      await utils.release()
      throw error
    }
    return {
      submit: (submittedAt) => utils.addJob(TASK, { submittedAt }).then(() => {}),
      remaining: () =>
        utils.withPgClient((client) => client.query<{ n: string }>("SELECT count(*)::text AS n FROM graphile_worker._private_jobs"))
          .then((result) => Number(result.rows[0]?.n)),
      close: async () => await utils.release()
    }
  },
  startWorker: async (config, onExecute) => {
    const runner = await run({
      connectionString: config.url,
      concurrency: config.concurrency,
      logger: silentLogger,
      noHandleSignals: true,
      taskList: {
        [TASK]: async (payload) => onExecute((payload as { submittedAt: number }).submittedAt)
      }
    })
    return { stop: () => runner.stop() }
  }
}
