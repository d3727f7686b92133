/**
 * agent/http.ts: the agent's requests on node:http, against real local
 * servers, and the reason it exists: a request loads no undici.
 */
import { execFile } from "node:child_process";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { requestOverNodeHttp } from "../../agent/http.ts";

const exec = promisify(execFile);
const servers: http.Server[] = [];

async function serve(handler: http.RequestListener): Promise<string> {
  const server = http.createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});

describe("requests over node:http", () => {
  it("sends the method, headers and body, and answers with the status and the whole body", async () => {
    let seen: { method?: string; auth?: string; length?: string; body: string } = { body: "" };
    const url = await serve((req, res) => {
      let body = "";
      req.on("data", (chunk: Buffer) => (body += chunk.toString()));
      req.on("end", () => {
        seen = { method: req.method, auth: req.headers.authorization, length: req.headers["content-length"], body };
        res.writeHead(409, { "content-type": "application/json" });
        res.write('{"error":');
        res.end('{"code":"conflict","message":"ünïcode"}}');
      });
    });
    const body = JSON.stringify({ text: "ünïcode" });
    const answer = await requestOverNodeHttp(`${url}/api/agent/poll?wait=5`, {
      method: "POST",
      headers: { authorization: "Bearer t0ken", "content-type": "application/json" },
      body,
      signal: new AbortController().signal,
      redirect: "manual",
    });
    expect(seen).toEqual({ method: "POST", auth: "Bearer t0ken", length: String(Buffer.byteLength(body)), body });
    expect(answer.status).toBe(409);
    expect(JSON.parse(await answer.text())).toEqual({ error: { code: "conflict", message: "ünïcode" } });
  });

  it("fails when the connection is cut before the answer ends", async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { "content-length": "1000" });
      res.write("partial");
      setTimeout(() => res.socket?.destroy(), 20);
    });
    await expect(
      requestOverNodeHttp(url, { method: "POST", headers: {}, body: "{}", signal: new AbortController().signal, redirect: "manual" }),
    ).rejects.toThrow();
  });

  it("fails with the abort when the signal aborts a held request", async () => {
    const url = await serve(() => {
      // Held, like a long poll with nothing to deliver.
    });
    const controller = new AbortController();
    const request = requestOverNodeHttp(url, { method: "POST", headers: {}, body: "{}", signal: controller.signal, redirect: "manual" });
    setTimeout(() => controller.abort(), 50);
    await expect(request).rejects.toMatchObject({ name: "AbortError" });
  });

  it("fails with the system's reason when nothing listens", async () => {
    const url = await serve(() => {});
    const closed = servers.pop()!;
    await new Promise((resolve) => closed.close(resolve));
    await expect(
      requestOverNodeHttp(url, { method: "POST", headers: {}, body: "{}", signal: new AbortController().signal, redirect: "manual" }),
    ).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });

  it("does not load undici (Node's fetch), which would cost an idle agent about 15 MB", async () => {
    const url = await serve((_req, res) => res.end("ok"));
    const module = fileURLToPath(new URL("../../agent/http.ts", import.meta.url));
    const script = `
      const { requestOverNodeHttp } = await import(${JSON.stringify(module)});
      const answer = await requestOverNodeHttp(${JSON.stringify(url)}, { method: "POST", headers: {}, body: "{}", signal: new AbortController().signal, redirect: "manual" });
      console.log(JSON.stringify({ text: await answer.text(), undici: process.moduleLoadList.some((name) => name.includes("undici")) }));
    `;
    const { stdout } = await exec(process.execPath, ["--input-type=module", "-e", script]);
    expect(JSON.parse(stdout)).toEqual({ text: "ok", undici: false });
  });
});
