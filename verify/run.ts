/**
 * `npm run chaos -- --scenario moderate --orders 2000 --seed 42`: the verification run.
 * See `verify/options.ts` for every flag and `docs/chaos.md` for reading the report.
 */
import { parseOptions, UsageError, USAGE } from "./options.ts";
import { killAllChildren } from "./processes.ts";
import { runChaos } from "./run-chaos.ts";

async function main(argv: string[]): Promise<number> {
  let options;
  try {
    options = parseOptions(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`chaos: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  if (!options) {
    process.stdout.write(USAGE);
    return 0;
  }

  // First Ctrl-C: stop sending, heal, clean up. Second: kill the children and leave now.
  const abort = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    if (++interrupts === 1) {
      process.stderr.write("\nchaos: interrupted; healing and cleaning up (Ctrl-C again to force)\n");
      abort.abort();
    } else {
      killAllChildren();
      process.exit(130);
    }
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  process.on("exit", killAllChildren);

  const out = process.stderr;
  const outcome = await runChaos(options, {
    out: { write: (t) => void out.write(t), isTTY: !!out.isTTY, columns: out.columns },
    signal: abort.signal,
  });
  if (abort.signal.aborted) {
    process.stderr.write("chaos: interrupted before the verdict; chaos healed, processes stopped\n");
    return 130;
  }
  if (outcome.error) process.stderr.write(`chaos: the run could not be completed:\n${outcome.error}\n`);
  return outcome.exitCode;
}

process.exit(await main(process.argv.slice(2)));
