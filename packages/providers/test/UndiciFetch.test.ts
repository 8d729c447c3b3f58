import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import * as http from "node:http"
import type { AddressInfo } from "node:net"
import * as UndiciFetch from "../src/internal/undiciFetch.js"

let server: http.Server
let base = ""
const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }> = []

beforeAll(async () => {
  server = http.createServer((request, response) => {
    let body = ""
    request.on("data", (chunk) => (body += chunk))
    request.on("end", () => {
      seen.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, body })
      if (request.url === "/moved") {
        response.writeHead(307, { location: "/echo" }).end()
      } else if (request.url === "/empty") {
        response.writeHead(204).end()
      } else if (request.url === "/hang") {
        // never answers
      } else if (request.url === "/text") {
        response.writeHead(200, { "content-type": "text/plain" }).end("plain")
      } else if (request.url === "/bad") {
        response.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: "no" }))
      } else {
        response.writeHead(201, { "content-type": "application/json", "set-cookie": ["a=1", "b=2"], "x-id": "42" })
        response.end(JSON.stringify({ method: request.method, body }))
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => {
  server.closeAllConnections()
  server.close()
})

describe("undiciFetch", () => {
  it("sends the method, headers and body, and gives back status, headers (repeated ones too) and body", async () => {
    const response = await UndiciFetch.fetch(`${base}/echo`, {
      method: "POST",
      headers: new Headers({ "content-type": "application/json", authorization: "Bearer k" }),
      body: JSON.stringify({ q: "hi" })
    })
    expect(response.status).toBe(201)
    expect(response.ok).toBe(true)
    expect(response.headers.get("x-id")).toBe("42")
    expect(response.headers.getSetCookie()).toEqual(["a=1", "b=2"])
    expect(await response.json()).toEqual({ method: "POST", body: "{\"q\":\"hi\"}" })
    const request = seen.at(-1)!
    expect(request.headers.authorization).toBe("Bearer k")
    expect(request.headers["content-type"]).toBe("application/json")
  })

  it("a JSON answer reads as a Response does: json, text, arrayBuffer, clone; other answers are Node's Response", async () => {
    const response = await UndiciFetch.fetch(`${base}/echo`, { method: "POST", body: "x" })
    const expected = { method: "POST", body: "x" }
    expect(response.url).toBe(`${base}/echo`)
    expect(response.headers.get("content-type")).toBe("application/json")
    expect(JSON.parse(await response.clone().text())).toEqual(expected)
    expect(JSON.parse(Buffer.from(await response.clone().arrayBuffer()).toString("utf8"))).toEqual(expected)
    expect(await response.json()).toEqual(expected)
    const text = await UndiciFetch.fetch(`${base}/text`)
    expect(text).toBeInstanceOf(Response)
    expect(await text.text()).toBe("plain")
    const bad = await UndiciFetch.fetch(`${base}/bad`)
    expect(bad).toBeInstanceOf(Response)
    expect(bad.ok).toBe(false)
    expect(await bad.json()).toEqual({ error: "no" })
  })

  it("takes headers as a plain object or a list of pairs", async () => {
    await UndiciFetch.fetch(`${base}/echo`, { headers: { "x-a": "1" } })
    expect(seen.at(-1)!.headers["x-a"]).toBe("1")
    await UndiciFetch.fetch(`${base}/echo`, { headers: [["x-b", "2"]] })
    expect(seen.at(-1)!.headers["x-b"]).toBe("2")
  })

  it("a 204 has no body; a redirect is followed as fetch follows it", async () => {
    const empty = await UndiciFetch.fetch(`${base}/empty`)
    expect(empty.status).toBe(204)
    expect(empty.body).toBeNull()
    const moved = await UndiciFetch.fetch(`${base}/moved`, { method: "POST", body: "x" })
    expect(moved.status).toBe(201)
    expect(seen.at(-1)!.url).toBe("/echo")
  })

  it("an abort signal cancels the request", async () => {
    const controller = new AbortController()
    const pending = UndiciFetch.fetch(`${base}/hang`, { signal: controller.signal })
    setTimeout(() => controller.abort(), 20)
    await expect(pending).rejects.toMatchObject({ name: "AbortError" })
  })

  it("a refused connection rejects", async () => {
    await expect(UndiciFetch.fetch("http://127.0.0.1:1/x")).rejects.toBeInstanceOf(Error)
  })

  it("what it does not cover (a Request object) goes to the global fetch", async () => {
    const response = await UndiciFetch.fetch(new Request(`${base}/echo`, { method: "PUT", body: "y" }))
    expect(await response.json()).toEqual({ method: "PUT", body: "y" })
  })

  it("exchange: the whole answer, a redirect followed, a cancel that ends the request, a bad URL as an error", async () => {
    const transport = await UndiciFetch.transport()
    const send = (url: string, body: string | null = "z") => {
      let cancel = () => {}
      const answer = new Promise<UndiciFetch.Answer>((resolve, reject) => {
        cancel = UndiciFetch.exchange(transport, { url, method: "POST", headers: { "x-a": "1" }, body }, resolve, reject)
      })
      return { answer, cancel: () => cancel() }
    }
    const echoed = await send(`${base}/echo`).answer
    expect(echoed.status).toBe(201)
    expect(echoed.headers["x-id"]).toBe("42")
    expect(JSON.parse(echoed.body.toString("utf8"))).toEqual({ method: "POST", body: "z" })
    expect(seen.at(-1)!.headers["x-a"]).toBe("1")
    const moved = await send(`${base}/moved`).answer
    expect(moved.status).toBe(201)
    expect(seen.at(-1)!.url).toBe("/echo")
    // cancelled: neither callback runs, and the server sees the connection close
    const closed = new Promise<void>((resolve) => server.once("request", (request) => request.socket.once("close", () => resolve())))
    const hung = send(`${base}/hang`)
    let settled = false
    hung.answer.then(() => (settled = true), () => (settled = true))
    await new Promise((resolve) => setTimeout(resolve, 20))
    hung.cancel()
    await closed
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(settled).toBe(false)
    await expect(send("not a url").answer).rejects.toBeInstanceOf(TypeError)
  })
})
