import { describe, expect, test } from "bun:test";
import { statSync } from "node:fs";
import { join } from "node:path";
import { filesUnder, ROOT, run, tool } from "./support.ts";

const shellcheck = tool("shellcheck", "SHELLCHECK");

async function scripts(): Promise<string[]> {
  return filesUnder("ops", "**/*.sh");
}

describe("shell scripts", () => {
  test("the scripts the docs and manifests name are all here", async () => {
    expect(await scripts()).toEqual([
      "ops/backup/backup.sh",
      "ops/backup/restore.sh",
      "ops/backup/ship-daily.sh",
      "ops/ci-setup.sh",
      "ops/deploy.sh",
      "ops/k8s/base/postgres/init-databases.sh",
    ]);
  });

  test("every script is executable, uses bash and stops on the first error", async () => {
    for (const file of await scripts()) {
      const text = await Bun.file(join(ROOT, file)).text();
      expect({ file, shebang: text.split("\n")[0] }).toEqual({ file, shebang: "#!/usr/bin/env bash" });
      expect({ file, strict: /^set -euo pipefail$/m.test(text) }).toEqual({ file, strict: true });
      expect({ file, executable: (statSync(join(ROOT, file)).mode & 0o111) === 0o111 }).toEqual({ file, executable: true });
    }
  });

  describe.skipIf(shellcheck.skip)("ShellCheck", () => {
    test("every script under ops/ is clean", async () => {
      const files = await scripts();
      const r = await run([shellcheck.need(), "--shell=bash", "--severity=style", "--external-sources", ...files]);
      expect({ code: r.code, findings: r.stdout }).toEqual({ code: 0, findings: "" });
    });

    test("ShellCheck does report a real mistake (so a clean run means something)", async () => {
      const r = await run([shellcheck.need(), "--shell=bash", "-"], { stdin: '#!/usr/bin/env bash\nrm -rf $DIR/*\n' });
      expect(r.code).not.toBe(0);
      expect(r.stdout).toContain("SC2086");
    });
  });
});
