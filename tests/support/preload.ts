// Loaded before every test file (bunfig.toml). Keeps test output quiet unless asked otherwise.
import { afterAll } from "bun:test";
import { removeCompiledBinary } from "./binary.ts";

process.env.LOG_LEVEL ??= "silent";

// Hooks in a preload run once for the whole run: the binary the suites share goes after the last.
afterAll(removeCompiledBinary);
