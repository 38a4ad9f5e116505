import { defineProject } from "vitest/config"

export default defineProject({
  test: {
    name: "durable",
    include: ["test/**/*.test.ts"],
    // One PostgreSQL server for the run (TASKPOOL_PG_URL, else an embedded one).
    globalSetup: ["test/pgServer.ts"],
    // The PostgreSQL and Redis suites share one server each; files run one at a time.
    fileParallelism: false
  }
})
