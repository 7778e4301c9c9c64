import { sql, type Kysely, type Transaction } from "kysely";
import type { Database } from "../../../platform/db.ts";
import { IdempotencyKeyReusedError } from "../../../platform/idempotency-key.ts";
import type { InventoryTables } from "./inventory.tables.ts";

/**
 * `Idempotency-Key`s of inventory's own writes (adjust, restock), kept in the same database and
 * the same transaction as the change they guard: the key row is claimed first, the change made,
 * the answer stored, and all of it commits together or not at all.
 *
 * A second request with the same key waits on the first one's claim (the primary key's lock)
 * rather than being told "in flight": the writes are a few short statements, so it soon sees
 * the stored answer (replay, or 422 for another body), or, when the first was refused and
 * rolled back, no claim at all, and makes its own attempt. A refusal is therefore never stored:
 * it changed nothing, not even the key.
 */

export interface KeyClaim {
  scope: string;
  key: string;
  /** What makes two requests "the same": a hash of the operation and its canonical body. */
  fingerprint: string;
  ttlMs: number;
}

/** A finished answer: sent now, or replayed later byte for byte. */
export interface StoredAnswer {
  status: number;
  body: string;
  replayed: boolean;
}

/**
 * Runs `work` in a transaction, under `claim` when one is given. Same key and fingerprint as a
 * stored answer: that answer, replayed, and `work` never runs. Same key, other fingerprint:
 * `IdempotencyKeyReusedError`. When `work` throws, nothing commits, the claim included.
 */
export async function keyedWrite(
  database: Database,
  claim: KeyClaim | null,
  work: (trx: Transaction<InventoryTables>) => Promise<{ status: number; body: string }>,
): Promise<StoredAnswer> {
  const answer = await (database.db as Kysely<InventoryTables>).transaction().execute(async (trx): Promise<StoredAnswer> => {
    if (!claim) return { ...(await work(trx)), replayed: false };
    // An expired key is taken over as if it were new.
    const claimed = await sql`
      insert into inventory.request_keys (scope, key, fingerprint, response_status, response_body, expires_at)
      values (${claim.scope}, ${claim.key}, ${claim.fingerprint}, 0, '', now() + ${claim.ttlMs} * interval '1 millisecond')
      on conflict (scope, key) do update set fingerprint = excluded.fingerprint, response_status = 0, response_body = '',
        created_at = now(), expires_at = excluded.expires_at
        where inventory.request_keys.expires_at <= now()
      returning key`.execute(trx);
    if (claimed.rows.length === 0) {
      const stored = await trx
        .selectFrom("inventory.request_keys")
        .select(["fingerprint", "response_status", "response_body"])
        .where("scope", "=", claim.scope)
        .where("key", "=", claim.key)
        .executeTakeFirstOrThrow();
      if (stored.fingerprint !== claim.fingerprint) {
        throw new IdempotencyKeyReusedError(`Idempotency-Key "${claim.key}" was already used with a different request.`);
      }
      return { status: stored.response_status, body: stored.response_body, replayed: true };
    }
    const done = await work(trx);
    await trx
      .updateTable("inventory.request_keys")
      .set({ response_status: done.status, response_body: done.body })
      .where("scope", "=", claim.scope)
      .where("key", "=", claim.key)
      .execute();
    return { ...done, replayed: false };
  });
  return answer;
}

/** Forgets expired keys; returns how many. Cheap: the expiry index finds them. */
export async function purgeExpiredKeys(database: Database): Promise<number> {
  const r = await (database.db as Kysely<InventoryTables>).deleteFrom("inventory.request_keys").where("expires_at", "<=", sql<Date>`now()`).executeTakeFirst();
  return Number(r.numDeletedRows);
}
