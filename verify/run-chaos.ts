import { randomBytes } from "node:crypto";
import { cpSync } from "node:fs";
import { join, resolve } from "node:path";
import { checkInvariants } from "./invariants.ts";
import { driveLoad, planItems, planOrders, planRestocks, runHold, runPay } from "./load-driver.ts";
import { readLedger } from "./ledger.ts";
import { readStockLowEvents, stockLowMatchesLedger, type StockLowEventRow } from "./stock-events.ts";
import { replayCommand, type RunOptions } from "./options.ts";
import { REPO_ROOT } from "./processes.ts";
import { Progress, type ProgressCounts, type ProgressSink } from "./progress.ts";
import { buildReport, writeReport, type ChaosReport } from "./report.ts";
import { awaitFinal, cancelAfterHeal, reconcile, type AwaitFinalOptions } from "./settle.ts";
import { tally } from "./stats.ts";
import { counterBy, minus, SystemApi } from "./system-api.ts";
import { bringUp, type System } from "./system-under-test.ts";
import type { CarefulClientOptions } from "./careful-client.ts";
import { FINAL_STATUSES, orderIdOf, type AccountRow, type ItemObservation, type LedgerRow, type OrderRecord, type RestockRecord } from "./types.ts";
import { asInfra, finishFaults, startFaults } from "./infra/run-faults.ts";
import { chaosPresetFor } from "./infra/scenarios.ts";
import { WebhookReceiver } from "./webhook-receiver.ts";
import { oldestTransaction } from "./backing-services.ts";
import { awaitDrained, listAllEvents, readHistories, RECEIVER_SETTINGS, startWebhookChaos, webhookChaosPlan, webhookSummary, type RelayKill, type WebhookSummary } from "./webhooks.ts";
import type { WebhookObservation } from "./types.ts";

/**
 * One verification run, phase by phase: bring up (or reach) the system, create the run's items,
 * start the experiment, drive the orders, heal, let every order settle, read the truth back, judge,
 * write the report, clean up. Whatever fails, chaos is healed and the processes are stopped.
 */

export interface RunOutcome {
  /** 0 every invariant holds; 1 a breach; 2 the run could not be carried out. */
  exitCode: 0 | 1 | 2;
  report: ChaosReport | null;
  paths: { json: string; md: string } | null;
  error?: string;
}

export interface RunIo {
  out: ProgressSink;
  signal?: AbortSignal;
}

const TOOL = "valerix-chaos/1";
/** The route label inventory's HTTP metrics give the deduct call. */
const DEDUCT_ROUTE = "/api/inventory/deduct";

/** Where the report goes when `--out` is not given: `verify/reports/<utc time>-<scenario>-s<seed>`. */
export function defaultReportPrefix(o: RunOptions, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
  return join(REPO_ROOT, "verify", "reports", `${stamp}-${o.scenario}-s${o.seed}`);
}

/**
 * How long the experiment may live: the planned load three times over plus two minutes, so a slow
 * system does not outrun it, yet a runner killed outright leaves no chaos on for long.
 */
export function chaosTtlS(o: Pick<RunOptions, "orders" | "rate">): number {
  if (o.rate <= 0) return 1800;
  return Math.min(86_400, Math.max(300, Math.ceil((o.orders / o.rate) * 3) + 120));
}

function reportOptions(o: RunOptions): Record<string, unknown> {
  // Never the admin token: reports get committed and shared.
  return {
    scenario: o.scenario,
    replicas: o.replicas,
    orders: o.orders,
    seed: o.seed,
    concurrency: o.concurrency,
    rate: o.rate,
    items: o.items,
    chaos_override: o.chaosOverride,
    target: o.target,
    embedded: o.embedded,
    settle_timeout_s: o.settleTimeoutS,
    request_timeout_ms: o.requestTimeoutMs,
    max_attempts: o.maxAttempts,
    duplicate_rate: o.duplicateRate,
    unknown_rate: o.unknownRate,
    max_lines: o.maxLines,
    one_item_rate: o.oneItemRate,
    cancel_rate: o.cancelRate,
    restocks: o.restocks,
    hold_rate: o.holdRate,
    hold_s: o.holdS,
    delay_threshold_ms: o.delayThresholdMs,
    ...(o.webhooks ? { webhooks: true } : {}),
  };
}

export async function runChaos(o: RunOptions, io: RunIo): Promise<RunOutcome> {
  const progress = new Progress(io.out, o.progress !== "off");
  if (o.progress === "plain") io.out.isTTY = false;
  const runId = randomBytes(4).toString("hex");
  const startedAt = new Date();
  const t0 = performance.now();
  const elapsed = () => performance.now() - t0;
  const phases: Record<string, number> = {};
  const mark = (name: string, since: number) => (phases[name] = Math.round(elapsed() - since));
  const prefix = o.out ? resolve(o.out) : defaultReportPrefix(o, startedAt);

  let sys: System | null = null;
  let api: SystemApi | null = null;
  let chaosOn = false;
  let keepLogs = false;
  let receiver: WebhookReceiver | null = null;
  try {
    let since = elapsed();
    sys = await bringUp(o, runId, progress);
    api = new SystemApi(sys.urls, sys.adminToken);
    mark("start", since);
    // With replicas, a role's counters are the sum over its live replicas, not one replica's.
    const infra = asInfra(sys);
    const metricsOf = (role: "orders" | "inventory") => (infra ? infra.metricsOf(role) : api!.metrics(sys!.urls[role]));

    // The run's own items: unique ids, so the stock check holds even on a shared deployment.
    since = elapsed();
    const planned = planItems({ orders: o.orders, items: o.items, runId, maxLines: o.maxLines });
    for (const it of planned) await api.createItem(it);
    const items: ItemObservation[] = planned.map((p) => ({ item_id: p.item_id, initial: p.stock, current: null }));
    for (const it of items) {
      const s = await api.stock(it.item_id);
      if (s !== it.initial) throw new Error(`item ${it.item_id} reads ${s} right after creation with ${it.initial}`);
    }
    const planOpts = {
      orders: o.orders,
      items: o.items,
      seed: o.seed,
      runId,
      duplicateRate: o.duplicateRate,
      unknownRate: o.unknownRate,
      maxLines: o.maxLines,
      oneItemRate: o.oneItemRate,
      cancelRate: o.cancelRate,
      restocks: o.restocks,
      holdRate: o.holdRate,
      holdS: o.holdS,
    };
    const plan = planOrders(planOpts, planned);
    // --webhooks: the receiver listens and is subscribed to every event before the first order.
    let subscription: { id: string; secret: string } | null = null;
    if (sys.relays) {
      receiver = new WebhookReceiver({ seed: o.seed, ...RECEIVER_SETTINGS, elapsed });
      receiver.start();
      subscription = await api.subscribeWebhook(receiver.url, `chaos-${runId}-webhook`);
      receiver.setSecret(subscription.secret);
      progress.phase(`webhooks: receiver at ${receiver.url} (${RECEIVER_SETTINGS.failRate * 100} % answered 503), subscription ${subscription.id}`);
    }
    mark("setup", since);

    const metricsBeforeLoad = await metricsOf("inventory");
    let requested: Record<string, unknown> | null = null;
    let active: Record<string, unknown> | null = null;
    let appliedMs: number | null = null;
    const preset = chaosPresetFor(o.scenario);
    if (preset) {
      requested = { preset, seed: o.seed, ttl_s: chaosTtlS(o), ...o.chaosOverride };
      const state = await api.applyChaos(requested);
      chaosOn = true;
      appliedMs = Math.round(elapsed());
      active = (state.config as Record<string, unknown> | undefined) ?? null;
      progress.phase(`chaos on at ${sys.urls.chaos}: ${JSON.stringify(active)}`);
    }

    progress.phase(`driving ${o.orders} orders, ${o.concurrency} at a time${o.rate > 0 ? `, ${o.rate}/s` : ""} (run ${runId}, seed ${o.seed})`);
    since = elapsed();
    const counts: ProgressCounts = { done: 0, total: o.orders, answers: {}, retried: 0 };
    progress.begin();
    const faultRun = startFaults(sys, o, { elapsed, say: (line) => progress.phase(line), signal: io.signal });
    const expectedLoadMs = o.rate > 0 ? (o.orders / o.rate) * 1000 : 30_000;
    const webhookChaos = sys.relays && receiver ? startWebhookChaos(sys.relays, receiver, webhookChaosPlan(expectedLoadMs), { seed: o.seed, elapsed, say: (line) => progress.phase(line) }) : null;
    const client: CarefulClientOptions = {
      baseUrl: sys.urls.orders,
      timeoutMs: o.requestTimeoutMs,
      maxAttempts: o.maxAttempts,
      backoffBaseMs: 100,
      backoffCapMs: 2_000,
      elapsed,
      signal: io.signal,
    };
    const restocks: RestockRecord[] = [];
    const holdWork: Array<Promise<void>> = [];
    const readOrder = (id: string) => api!.order(id);
    const records: OrderRecord[] = await driveLoad(plan, {
      concurrency: o.concurrency,
      rate: o.rate,
      client,
      seed: o.seed,
      restocks: planRestocks(planOpts, planned),
      restock: (item, qty) => api!.restockOnce(item, qty),
      readOrder,
      holdWork,
      onOrder: (r) => {
        counts.done++;
        const k = r.answers[0] ? String(r.answers[0].status) : "none";
        counts.answers[k] = (counts.answers[k] ?? 0) + 1;
        if (r.attempts.length > (r.duplicate ? 2 : 1)) counts.retried++;
        progress.update(counts);
      },
    }, restocks);
    progress.update(counts, true);
    progress.finish();
    mark("load", since);
    // Every infrastructure fault is lifted (restarted, healed) before the heal and the settling.
    if (faultRun) await faultRun.done;
    // The webhook faults end with the load: the receiver back, both relays up.
    const relayKills: RelayKill[] = webhookChaos ? await webhookChaos.finish() : [];
    if (webhookChaos) progress.phase(`webhooks: ${relayKills.length} relay kills during the load; receiver up, both relays up`);
    const webhooksHealedAt = elapsed();
    if (io.signal?.aborted) throw new Error("aborted");

    since = elapsed();
    // Inventory's own count of deduct calls, to show how many reached it while the chaos was on.
    const deductsOf = (text: string | null) =>
      text ? counterBy(text, "http_request_duration_seconds_count", "status", { route: DEDUCT_ROUTE, method: "POST" }) : null;
    const deductsBeforeLoad = deductsOf(metricsBeforeLoad);
    const deductsAtHeal = deductsOf(await metricsOf("inventory"));
    let healedMs: number | null = null;
    let expiredEarly = false;
    if (chaosOn) {
      // An experiment that expired mid-load would quietly make this a milder run: say so.
      const state = await api.chaosState().catch(() => null);
      expiredEarly = state?.active === false;
      if (expiredEarly) progress.phase("warning: the chaos experiment expired before the load ended (raise ttl_s with --chaos)");
      await api.heal();
      chaosOn = false;
      healedMs = Math.round(elapsed());
      progress.phase("healed: chaos off");
    }
    const healedAt = elapsed();
    // A hold made just after healing settles one hold_s later (plus the sweep): the bound covers it.
    const settleBoundMs = (o.settleTimeoutS + (o.holdRate > 0 ? o.holdS : 0)) * 1000;
    let lastLeft = -1;
    let lastSaid = 0;
    const reconciled = await reconcile(records, { ...client, maxAttempts: Math.max(3, o.maxAttempts) }, o.seed, o.concurrency);
    if (reconciled) progress.phase(`resent ${reconciled} orders that never got an answer`);
    // Holds of orders answered only now get their plan too.
    for (const r of records) {
      if (r.reconciled && r.hold && orderIdOf(r) !== null) holdWork.push(runHold(r, { client: { ...client, maxAttempts: Math.max(3, o.maxAttempts) }, seed: o.seed, readOrder }));
    }
    const settleClient = { ...client, maxAttempts: Math.max(3, o.maxAttempts) };
    const cancelsResent = await cancelAfterHeal(records, settleClient, o.seed, o.concurrency, "resend");
    if (cancelsResent) progress.phase(`resent ${cancelsResent} cancels that had no answer or no order id`);
    if (holdWork.length) {
      progress.phase(`holds: ${holdWork.length} payments, cancels and expiries under way; the last deadline is up to ${o.holdS} s after the last hold was made`);
      await Promise.all(holdWork);
      // A payment or a hold's cancel sent while the system was down may have run out of tries
      // without an answer: the careful client asks again with the same key now, as it does for
      // orders. The server judges a payment by when it first recorded it, never by this resend.
      const unpaid = records.filter((r) => r.hold && r.hold.pay_sent_ms !== null && !r.hold.answers.some((a) => a.lane === "pay"));
      for (const r of unpaid) await runPay(r, settleClient, o.seed);
      if (unpaid.length) progress.phase(`resent ${unpaid.length} payments that never got an answer`);
      const holdCancels = await cancelAfterHeal(records, settleClient, o.seed, o.concurrency, "resend");
      if (holdCancels) progress.phase(`resent ${holdCancels} cancels of holds that had no answer`);
    }
    const settleOptions: AwaitFinalOptions = {
      boundMs: settleBoundMs,
      concurrency: Math.min(32, o.concurrency),
      pollMs: 1_000,
      elapsed,
      healedAt,
      signal: io.signal,
      onRound: (left, ms) => {
        // One line when the count moves or every 10 s, not one per poll.
        if (left === lastLeft && ms - lastSaid < 10_000) return;
        lastLeft = left;
        lastSaid = ms;
        progress.phase(`settling: ${left} orders not final yet, ${Math.round(ms / 1000)} s after healing`);
      },
    };
    let unfinished = await awaitFinal(records, api, settleOptions);
    // The late cancels, of settled orders (confirmed: 200; refused: 409); then their orders settle again.
    const cancelsAfterHeal = await cancelAfterHeal(records, settleClient, o.seed, o.concurrency, "after_heal");
    if (cancelsAfterHeal) {
      progress.phase(`after settling: ${cancelsAfterHeal} cancels sent`);
      await awaitFinal(records.filter((r) => r.cancel?.moment === "after_heal"), api, settleOptions);
      unfinished = records.filter((r) => orderIdOf(r) !== null && !FINAL_STATUSES.has(r.final?.status ?? "")).length;
    }
    for (const it of items) {
      const s = await api.stockAndReserved(it.item_id).catch(() => null);
      it.current = s?.quantity ?? null;
      it.reserved = s?.reserved_quantity ?? null;
    }
    for (const it of items) {
      it.db_quantity = null;
      it.db_reserved = null;
    }
    mark("settle", since);

    // After settling, nothing may wait for delivery: a bounded wait, then what the receiver saw.
    let webhooks: WebhookObservation | null = null;
    let webhookReport: WebhookSummary | null = null;
    if (sys.relays && receiver && subscription) {
      since = elapsed();
      const boundMs = o.settleTimeoutS * 1000;
      let said = -10_000;
      let heldBy: string | null = null;
      const finalWait = await awaitDrained(() => api!.metrics(sys!.urls.orders), {
        boundMs,
        onRound: (age, ms) => {
          if (age !== 0 && ms - said >= 10_000) {
            said = ms;
            progress.phase(`webhooks: oldest undelivered event ${age ?? "?"} s old, ${Math.round(ms / 1000)} s into the drain wait${heldBy ? `; oldest transaction on the server: ${heldBy}` : ""}`);
            // Events wait for every older transaction on the server to end: name the oldest.
            if (sys!.pgAdminUrl) void oldestTransaction(sys!.pgAdminUrl).then((t) => (heldBy = t));
          }
        },
      });
      const { events, other } = await listAllEvents(api);
      const histories = await readHistories(api, records, events, Math.min(32, o.concurrency));
      webhooks = {
        events,
        other_events: other,
        attempts: receiver.attempts.slice(),
        histories,
        drained: finalWait !== null,
        healed_ms: Math.round(webhooksHealedAt),
        started_wall_ms: startedAt.getTime(),
        drain_bound_ms: boundMs,
      };
      webhookReport = {
        ...webhookSummary(webhooks, {
          subscription: subscription.id,
          url: receiver.url,
          relaySettings: sys.relaySettings ?? {},
          kills: relayKills,
          relayStarts: sys.relays.starts,
          downtime: receiver.downtimes,
        }),
        final_wait_ms: finalWait,
        ...(finalWait === null && heldBy ? { oldest_transaction: heldBy } : {}),
      };
      progress.phase(
        `webhooks: ${events.length} events, ${webhooks.attempts.length} attempts received, ${webhookReport.events_delivered} events delivered; ` +
          `${finalWait === null ? "backlog NOT drained" : "backlog drained"}; the ${webhookReport.backlog_at_heal} events the faults left were delivered ${webhookReport.drain_ms === null ? "NOT all" : `${Math.round(webhookReport.drain_ms / 100) / 10} s after healing`}`,
      );
      mark("webhooks", since);
    }

    since = elapsed();
    const events = await api.chaosEvents(200).catch(() => null);
    const metricsText = await metricsOf("orders");
    const deductsAtEnd = deductsOf(await metricsOf("inventory"));
    const infrastructure = infra ? await finishFaults(sys, records, faultRun?.records ?? [], elapsed) : null;
    const server = metricsText
      ? {
          breaker_transitions: counterBy(metricsText, "circuit_breaker_transitions_total", "to"),
          fallbacks: counterBy(metricsText, "inventory_fallbacks_total", "reason"),
          worker_results: counterBy(metricsText, "order_retries_total", "result"),
          inventory_deducts:
            deductsBeforeLoad && deductsAtHeal && deductsAtEnd
              ? { during_load: minus(deductsAtHeal, deductsBeforeLoad), after_heal: minus(deductsAtEnd, deductsAtHeal) }
              : null,
        }
      : null;
    if (sys.ledgerAfterStop) await sys.stop();
    let ledger: LedgerRow[] | null = null;
    let accounts: AccountRow[] | null = null;
    let stockEvents: StockLowEventRow[] | null = null;
    if (sys.ledger) {
      const orderIds = [...new Set(records.flatMap((r) => r.answers.map((a) => a.order_id).filter((x): x is string => !!x)))];
      const read = await readLedger(sys.ledger, { itemIds: items.map((i) => i.item_id), orderIds }).catch((err) => {
        progress.phase(`ledger not readable: ${(err as Error).message}`);
        return null;
      });
      stockEvents = await readStockLowEvents(sys.ledger, items.map((i) => i.item_id)).catch((err) => {
        progress.phase(`stock events not readable: ${(err as Error).message}`);
        return null;
      });
      if (read) {
        ledger = read.rows;
        accounts = read.accounts;
        for (const it of items) {
          it.db_quantity = read.quantities[it.item_id] ?? null;
          it.db_reserved = read.reserved[it.item_id] ?? null;
        }
      }
    }
    if (!ledger) {
      for (const it of items) {
        delete it.db_quantity;
        delete it.db_reserved;
      }
    }
    await sys.stop();
    mark("verify", since);

    const verdicts = checkInvariants({ orders: records, items, ledger, accounts, restocks, settleBoundMs, webhooks });
    // stock.low against the ledger: one event per crossing of an item's threshold, none extra.
    verdicts.push(stockLowMatchesLedger({ ledger, thresholds: Object.fromEntries(planned.map((p) => [p.item_id, p.low_stock_threshold])), events: stockEvents }));
    const reservedSums = ledger ? Object.fromEntries(items.map((i) => [i.item_id, ledger!.filter((r) => r.item_id === i.item_id).reduce((s, r) => s + (r.reserved_change ?? 0), 0)])) : null;
    const ledgerSums = ledger ? Object.fromEntries(items.map((i) => [i.item_id, ledger!.filter((r) => r.item_id === i.item_id).reduce((s, r) => s + r.quantity_change, 0)])) : null;
    const report = buildReport({
      tool: TOOL,
      command: replayCommand(o),
      options: reportOptions(o),
      runId,
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      environment: sys.environment,
      chaos: {
        requested,
        active,
        applied_ms: appliedMs,
        healed_ms: healedMs,
        expired_during_load: expiredEarly,
        event_counts: events?.counts ?? null,
        recent_events: events?.events ?? [],
      },
      phases,
      items,
      records,
      restocks,
      verdicts,
      settle: { bound_ms: settleBoundMs, unfinished, reconciled, cancels_after_heal: cancelsAfterHeal, cancels_resent: cancelsResent },
      ledger: ledger ? tally(ledger, (r) => r.type) : null,
      ledgerSums,
      reservedSums,
      server,
      delayThresholdMs: o.delayThresholdMs,
      infrastructure,
      jsonOrders: o.jsonOrders,
      jsonMaxOrders: o.jsonMaxOrders,
      webhooks: webhookReport,
    });
    const paths = writeReport(report, prefix);
    if (report.verdict === "fail") keepLogs = true;
    for (const v of verdicts) {
      const mark = v.status === "pass" ? "✓" : v.status === "fail" ? "✗" : "–";
      progress.phase(`${mark} ${v.name}${v.status === "fail" ? `: ${v.breach_count} breaches, e.g. ${v.breaches[0]?.subject}: ${v.breaches[0]?.detail}` : v.status === "skipped" ? " (skipped)" : ""}`);
    }
    progress.phase(`${report.verdict.toUpperCase()}: report in ${paths.md} and ${paths.json}`);
    return { exitCode: report.verdict === "pass" ? 0 : 1, report, paths };
  } catch (err) {
    keepLogs = true;
    return { exitCode: 2, report: null, paths: null, error: (err as Error).stack ?? String(err) };
  } finally {
    if (chaosOn && api) await api.heal().catch(() => {});
    receiver?.stop();
    if (sys) {
      if (keepLogs && sys.logDir) {
        const dest = `${prefix}.logs`;
        try {
          cpSync(sys.logDir, dest, { recursive: true });
          progress.phase(`process logs kept in ${dest}`);
        } catch {
          // the logs are a courtesy; the verdict stands without them
        }
      }
      await sys.cleanup(o.keep).catch(() => {});
    }
  }
}
