import { createHmac, randomBytes } from "node:crypto";

/**
 * Standard Webhooks signatures (standardwebhooks.com): `v1,` + base64 HMAC-SHA256 of
 * `${id}.${timestamp}.${body}`, keyed with the bytes the secret's base64 part (after `whsec_`)
 * stands for. Several signatures are sent space-separated while a rotated secret still counts.
 */

const PREFIX = "whsec_";

/** A fresh secret: `whsec_` + base64 of 24 random bytes. `newSecret()` → "whsec_3q2+7w…" */
export function newSecret(): string {
  return PREFIX + randomBytes(24).toString("base64");
}

/** `sign("whsec_…", "evt_1", 1767607200, "{…}")` → "v1,K5oZ…=" */
export function sign(secret: string, id: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, "base64");
  return `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`;
}

/** The three headers of one attempt; `secrets` are the live ones, newest first. */
export function webhookHeaders(secrets: readonly string[], id: string, timestamp: number, body: string): Record<string, string> {
  return {
    "content-type": "application/json",
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": secrets.map((s) => sign(s, id, timestamp, body)).join(" "),
  };
}
