/**
 * The one list of test projects. Vitest 4+ no longer reads workspace files on
 * its own; `vitest.config.ts` passes this list as `test.projects`.
 */
export default ["packages/core", "packages/durable", "packages/examples"]
