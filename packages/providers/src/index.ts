/**
 * @prompto/providers: the built-in providers, one module per API. Each module exports `make`
 * (a provider) and `layer` (a registry holding just that provider).
 *
 * @since 0.1.0
 */
import { Provider } from "@prompto/core"
import { Layer } from "effect"
import * as TestApi from "./TestApi.js"

/** @since 0.1.0 */
export * as TestApi from "./TestApi.js"

/**
 * Makes a fresh instance of every built-in provider (currently the `test` API).
 *
 * @since 0.1.0
 * @category constructors
 */
export const all = (): ReadonlyArray<Provider.Provider> => [TestApi.make()]

/**
 * A provider registry holding every built-in provider. Fresh instances are made each time the
 * layer is built. To add or override providers, build your own with
 * `Provider.registryLayer(...all(), ...mine)`: later providers replace earlier ones.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Provider.ProviderRegistry> = Layer.suspend(() => Provider.registryLayer(...all()))
