/**
 * GitHub Apps made through the manifest flow (docs.github.com "Registering a GitHub App from a manifest"):
 * the manifest form on the site hands back a one-time code, `POST /app-manifests/{code}/conversions`
 * turns it into the App (id, PKCS#1 private key, generated webhook secret), the App is installed on the
 * emulator's one repository, and its JWT (RS256, `iss` = App id) reads the installation and mints
 * installation tokens the API then accepts.
 */
import { generateKeyPairSync, randomBytes, type KeyObject } from "node:crypto";
import { importSPKI, jwtVerify } from "jose";
import { z } from "zod";

export const AppManifest = z.object({
  name: z.string().min(1).max(34),
  url: z.url(),
  hook_attributes: z.object({ url: z.url(), active: z.boolean().default(true) }),
  redirect_url: z.url(),
  setup_url: z.url().optional(),
  description: z.string().optional(),
  public: z.boolean().default(false),
  default_permissions: z.record(z.string(), z.enum(["read", "write"])).default({}),
  default_events: z.array(z.string()).default([]),
});
export type AppManifest = z.infer<typeof AppManifest>;

export interface EmulatedApp {
  id: number;
  slug: string;
  manifest: AppManifest;
  webhookSecret: string;
  /** GitHub hands out PKCS#1 ("BEGIN RSA PRIVATE KEY"). */
  pem: string;
  publicKey: KeyObject;
  installationId: number | null;
}

const CODE_TTL_MS = 60 * 60_000;

export class AppRegistry {
  readonly #pending = new Map<string, { manifest: AppManifest; until: number }>();
  readonly #apps = new Map<number, EmulatedApp>();
  readonly #tokens = new Map<string, { installationId: number; until: number }>();
  #nextId = 900_001;
  #nextInstallation = 70_000_001;

  get apps(): readonly EmulatedApp[] {
    return [...this.#apps.values()];
  }

  /** The person confirmed the manifest form: a code for the redirect, single use, an hour. */
  createCode(manifest: AppManifest, now: number): string {
    const code = randomBytes(10).toString("hex");
    this.#pending.set(code, { manifest, until: now + CODE_TTL_MS });
    return code;
  }

  /** `POST /app-manifests/{code}/conversions`; null for an unknown, used or expired code. */
  convert(code: string, now: number): EmulatedApp | null {
    const pending = this.#pending.get(code);
    this.#pending.delete(code);
    if (pending === undefined || pending.until < now) return null;
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const id = this.#nextId++;
    const slug = pending.manifest.name.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
    const app: EmulatedApp = {
      id,
      slug,
      manifest: pending.manifest,
      webhookSecret: randomBytes(20).toString("hex"),
      pem: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
      publicKey,
      installationId: null,
    };
    this.#apps.set(id, app);
    return app;
  }

  bySlug(slug: string): EmulatedApp | undefined {
    return this.apps.find((app) => app.slug === slug);
  }

  /** The person installs the App on the repository. */
  install(app: EmulatedApp): number {
    app.installationId ??= this.#nextInstallation++;
    return app.installationId;
  }

  /** The App a `Bearer <JWT>` header authenticates, as GitHub checks it: RS256 by the App's key, `iss` its id, unexpired. */
  async appOf(authorization: string | undefined): Promise<EmulatedApp | null> {
    const jwt = /^bearer\s+(.+)$/i.exec(authorization?.trim() ?? "")?.[1];
    if (jwt === undefined) return null;
    for (const app of this.#apps.values()) {
      try {
        const key = await importSPKI(app.publicKey.export({ type: "spki", format: "pem" }).toString(), "RS256");
        await jwtVerify(jwt, key, { issuer: String(app.id), algorithms: ["RS256"] });
        return app;
      } catch {
        // not this App's
      }
    }
    return null;
  }

  mintToken(installationId: number, now: number): { token: string; expiresAt: string } {
    const token = `ghs_${randomBytes(18).toString("hex")}`;
    const until = now + 60 * 60_000;
    this.#tokens.set(token, { installationId, until });
    return { token, expiresAt: new Date(until).toISOString() };
  }

  acceptsToken(token: string, now: number): boolean {
    const minted = this.#tokens.get(token);
    return minted !== undefined && minted.until > now;
  }
}
