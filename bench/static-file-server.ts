/**
 * bench:cache's baseline (bench/cache.ts): a static file server over a directory, as nginx or
 * `python3 -m http.server` would be, that also takes PUTs as files. It answers the requests `cache push`
 * and Nix make of an HTTP binary cache (HEAD/GET a file, PUT one) under /cache/, and nothing else:
 * no tokens, no signature checks, no R2. A process of its own, as workerd is, so the bench's own work
 * (Miniflare's side of the Worker's bindings is in the bench's process) does not slow it.
 *
 * `node bench/static-file-server.ts DIR` prints its URL on stdout once it listens.
 */
import { createReadStream, createWriteStream } from "node:fs";
import * as fs from "node:fs/promises";
import { createServer } from "node:http";
import * as path from "node:path";
import { pipeline } from "node:stream/promises";

const dir = path.resolve(process.argv[2] ?? ".");
await fs.writeFile(path.join(dir, "nix-cache-info"), "StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n");

const server = createServer((request, response) => {
  const name = decodeURIComponent(new URL(request.url ?? "/", "http://x").pathname).replace(/^\/cache\//, "");
  const file = path.join(dir, name);
  if (name.includes("..") || !file.startsWith(`${dir}/`)) return void response.writeHead(400).end();
  if (request.method === "PUT") {
    void fs
      .mkdir(path.dirname(file), { recursive: true })
      .then(() => pipeline(request, createWriteStream(file)))
      .then(
        () => response.writeHead(201).end(),
        () => response.writeHead(500).end(),
      );
    return;
  }
  void fs.stat(file).then(
    (stat) => {
      response.writeHead(200, { "content-length": String(stat.size) });
      if (request.method === "HEAD") response.end();
      else createReadStream(file).pipe(response);
    },
    () => response.writeHead(404).end(),
  );
});
server.listen(0, "127.0.0.1", () => {
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the static file server has no port");
  process.stdout.write(`http://127.0.0.1:${address.port}\n`);
});
