// Types of the undici files that `internal/undiciParts.ts` loads without undici's index.
declare module "undici/lib/dispatcher/agent.js" {
  import { Agent } from "undici"
  export default Agent
}
declare module "undici/lib/api/api-request.js" {
  import type { Dispatcher } from "undici"
  const request: (this: Dispatcher, options: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>
  export default request
}
declare module "undici/lib/interceptor/redirect.js" {
  import { interceptors } from "undici"
  const redirect: typeof interceptors.redirect
  export default redirect
}
