/**
 * A fresh PGlite data folder costs seconds of initdb (WebAssembly) on first start; loading an
 * already initialised cluster costs well under one. The build makes that cluster once:
 *
 *   bun platform/pglite-template.ts dist/pglite-template.tar.gz
 *
 * and embeds the archive in the executable (`Bun.embeddedFiles`). `openDatabase` uses it for an
 * empty data folder; without it (`bun run`, tests) PGlite runs initdb as usual.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { PGlite } from "@electric-sql/pglite";

export const TEMPLATE_NAME = "pglite-template.tar.gz";

/** The embedded template, when this is the compiled executable and the build put one in. */
export function embeddedTemplate(): Blob | undefined {
  const files = (Bun as unknown as { embeddedFiles?: ReadonlyArray<Blob & { name?: string }> }).embeddedFiles ?? [];
  return files.find((f) => f.name === TEMPLATE_NAME || f.name?.endsWith(`/${TEMPLATE_NAME}`));
}

export async function makeTemplate(outPath: string): Promise<number> {
  const pglite = await PGlite.create();
  try {
    const archive = await pglite.dumpDataDir("gzip");
    const bytes = new Uint8Array(await archive.arrayBuffer());
    mkdirSync(dirname(outPath), { recursive: true });
    writeFileSync(outPath, bytes);
    return bytes.length;
  } finally {
    await pglite.close();
  }
}

if (import.meta.main) {
  const out = process.argv[2];
  if (!out) {
    console.error("usage: bun platform/pglite-template.ts OUT.tar.gz");
    process.exit(2);
  }
  const size = await makeTemplate(out);
  console.log(`wrote ${out} (${(size / 1024 / 1024).toFixed(1)} MiB)`);
}
