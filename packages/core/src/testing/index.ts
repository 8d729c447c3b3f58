/**
 * Testing helpers: mock provider layers for tests and offline pipelines.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as MockProvider from "./MockProvider.js"

/**
 * @since 0.1.0
 */
export * as SyntheticRun from "./SyntheticRun.js"
