/**
 * The host catalogue as the coordinator sees it: D1 holds hosts and tokens (the truth); this keeps
 * who owns a token and which id a name has, so a poll or an enqueue reads D1 once per host. The
 * coordinator is the only writer of the catalogue, so creating, removing and re-keying a host cannot
 * race a poll: a removal or rotation bumps the epoch, and a read that began before is read again,
 * never cached. Reads and D1 writes only, no step: the shell runs the steps around them.
 */
import { refuse, type Outcome } from "../outcome.ts";
import type { Database } from "../db/client.ts";
import { deleteHost, findHostByName, findHostByTokenHash, insertHostWithToken, isUniqueViolation, rotateHostToken, type Host } from "../db/hosts.ts";
import type { HostRef } from "./host.ts";

/** How often a catalogue read is retried when a removal or rotation lands during it. */
export const CATALOGUE_READ_TRIES = 5;

/** A read repeated while `epoch()` moved during it; null after CATALOGUE_READ_TRIES overtaken reads. */
export async function readUnlessChanged<T>(epoch: () => number, read: () => Promise<T>): Promise<{ value: T } | null> {
  for (let attempt = 0; attempt < CATALOGUE_READ_TRIES; attempt++) {
    const before = epoch();
    const value = await read();
    if (before === epoch()) return { value };
  }
  return null;
}

export class Catalogue {
  private readonly tokenOwners = new Map<string, HostRef>();
  /** Hosts by name, so queueing a command needs no D1 read. */
  private readonly hostsByName = new Map<string, HostRef>();
  /** Bumped when a host is removed or its token rotated. */
  private epoch = 0;
  /** Hosts whose removal is under way: refused from its first step on. */
  private readonly removing = new Set<string>();
  /** Names whose creation is under way: a second create of the same name is refused at once. */
  private readonly creating = new Set<string>();

  private readonly db: Database;

  constructor(db: Database) {
    this.db = db;
  }

  authenticate(tokenHash: string): Promise<HostRef | null> {
    return this.read(this.tokenOwners, tokenHash, () => findHostByTokenHash(this.db, tokenHash));
  }

  hostNamed(name: string): Promise<HostRef | null> {
    return this.read(this.hostsByName, name, () => findHostByName(this.db, name));
  }

  isRemoving(hostId: string): boolean {
    return this.removing.has(hostId);
  }

  /** Creates the host and its first token; a name taken (or being taken) is refused with 409. */
  async create(host: Host, token: { id: string; tokenHash: string }): Promise<Outcome<{ host: Host }>> {
    const taken = () => refuse(409, "host_exists", `a host named ${host.name} already exists`);
    if (this.creating.has(host.name)) return taken();
    this.creating.add(host.name);
    try {
      if (await findHostByName(this.db, host.name)) return taken();
      await insertHostWithToken(this.db, host, token);
      return { ok: true, host };
    } catch (error) {
      if (isUniqueViolation(error)) return taken();
      throw error;
    } finally {
      this.creating.delete(host.name);
    }
  }

  /** Revokes every token of the host and adds the new one; the old token is refused from this answer on. */
  async rotate(host: HostRef, token: { id: string; tokenHash: string }, at: string): Promise<void> {
    this.forget(host.id);
    await rotateHostToken(this.db, host.id, token, at);
    this.forget(host.id);
  }

  /**
   * Deletes the host from D1, refusing it from the first step on; `removed` runs once it is gone (the
   * shell's steps forgetting it), before anyone sees it again.
   */
  async remove(host: HostRef, removed: () => void): Promise<boolean> {
    if (this.removing.has(host.id)) return false;
    this.removing.add(host.id);
    this.forget(host.id);
    try {
      await deleteHost(this.db, host.id);
      this.forget(host.id);
      removed();
    } finally {
      this.removing.delete(host.id);
    }
    return true;
  }

  /** Drops every cached fact about the host's identity and invalidates reads in flight. */
  private forget(hostId: string): void {
    this.epoch++;
    for (const [hash, owner] of this.tokenOwners) if (owner.id === hostId) this.tokenOwners.delete(hash);
    for (const [name, host] of this.hostsByName) if (host.id === hostId) this.hostsByName.delete(name);
  }

  /** A catalogue read from D1 that no removal or rotation overtook: a revoked token is never cached. */
  private async read(cache: Map<string, HostRef>, key: string, load: () => Promise<Host | null>): Promise<HostRef | null> {
    const cached = cache.get(key);
    if (cached) return this.removing.has(cached.id) ? null : cached;
    const read = await readUnlessChanged(() => this.epoch, load);
    // A cache entry set by a read that finished meanwhile is as good as ours.
    if (!read) return null;
    const host = read.value;
    if (!host || this.removing.has(host.id)) return null;
    const ref: HostRef = { id: host.id, name: host.name, lastSeenAt: host.lastSeenAt };
    cache.set(key, ref);
    return ref;
  }
}
