import { describe, expect, test } from "bun:test";
import { EXIT_PENDING, parseCommandLine, USAGE } from "./cli.ts";

describe("command line", () => {
  test.each([
    [[], { kind: "serve" }],
    [["--help"], { kind: "help" }],
    [["-h"], { kind: "help" }],
    [["migrate", "--help"], { kind: "help" }],
    [["--version"], { kind: "version" }],
    [["migrate"], { kind: "migrate", status: false }],
    [["migrate", "--status"], { kind: "migrate", status: true }],
    [["--status", "migrate"], { kind: "migrate", status: true }],
    [["healthcheck"], { kind: "healthcheck" }],
    // After `--` an argument is a positional, never an option.
    [["--", "migrate"], { kind: "migrate", status: false }],
  ])("%j", (argv, expected) => {
    expect(parseCommandLine(argv)).toEqual(expected as ReturnType<typeof parseCommandLine>);
  });

  test.each([
    [["--bogus"], "unknown option '--bogus'"],
    [["-x"], "unknown option '-x'"],
    [["serve"], "unknown command 'serve'"],
    [["migrate", "now"], "unexpected argument 'now'"],
    [["--status"], "--status belongs to `migrate`"],
    [["healthcheck", "--status"], "--status belongs to `migrate`"],
    [["migrate", "--version"], "--version takes no command"],
    [["--version=1"], "option '--version' does not take an argument"],
    [["--", "--status"], "unknown command '--status'"],
  ])("%j is a usage error", (argv, message) => {
    expect(parseCommandLine(argv)).toEqual({ kind: "usage-error", message });
  });

  test("the usage names every command, option and exit code, pending migrations included", () => {
    for (const word of ["migrate --status", "healthcheck", "--help", "--version", "DATABASE_URL", "VALERIX_DATA_DIR"]) expect(USAGE).toContain(word);
    for (const code of [0, 1, 2, EXIT_PENDING]) expect(USAGE).toMatch(new RegExp(`^  ${code}  `, "m"));
  });
});
