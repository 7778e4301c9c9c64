/**
 * One replica for the every_nth test: an injector on a real Redis, making `count` decisions for
 * the experiment already configured there, printing one line of JSON with its hit count.
 *   bun chaos/testing/decide-worker.ts REDIS_URL PREFIX COUNT
 */
import { createRedisStore } from "../../platform/kv/redis.ts";
import { createChaosInjector } from "../injector.ts";

const [url, prefix, count] = process.argv.slice(2);
const kv = createRedisStore(url!, { prefix: prefix! });
const chaos = createChaosInjector({ kv });
let hits = 0;
for (let i = 0; i < Number(count); i++) {
  const d = await chaos.decide("deduct", { requestId: `${process.pid}-${i}` });
  if (d?.crash) hits++;
}
console.log(JSON.stringify({ hits }));
await kv.close();
