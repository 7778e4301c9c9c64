import { describe, expect, test } from "bun:test";
import { countdown, utc } from "./format.ts";
import { holdDeadline } from "./hold.ts";

describe("a hold's deadline", () => {
  test("time left in words, rounded up so the last second is never zero", () => {
    expect(countdown(0)).toBe("0 s");
    expect(countdown(0.2)).toBe("1 s");
    expect(countdown(59)).toBe("59 s");
    expect(countdown(60)).toBe("1 min 0 s");
    expect(countdown(3_723)).toBe("1 h 2 min 3 s");
    expect(countdown(86_400)).toBe("24 h 0 min 0 s");
    expect(countdown(-5)).toBe("0 s");
  });

  test("the absolute deadline in UTC", () => {
    expect(utc("2026-12-02T16:05:00.000Z")).toBe("2026-12-02 16:05:00 UTC");
    expect(utc("not a time")).toBe("not a time");
  });

  test("rendered with the server's clock for the browser's countdown; once due, it says so", () => {
    const now = Date.parse("2026-12-02T16:00:00.000Z");
    const live = String(holdDeadline("2026-12-02T16:04:30.000Z", now));
    expect(live).toContain(`<time class="hold__left" data-countdown datetime="2026-12-02T16:04:30.000Z" data-server-now="${now}">4 min 30 s</time>`);
    expect(live).toContain("until <time class=\"hold__at\" datetime=\"2026-12-02T16:04:30.000Z\">2026-12-02 16:04:30 UTC</time>");
    const due = String(holdDeadline("2026-12-02T16:00:00.000Z", now));
    expect(due).toContain("deadline passed");
    expect(due).not.toContain("data-countdown");
  });

  test("the browser script counts in the same words as the server", async () => {
    // countdown.js is a plain browser file: evaluate its `words` against the server's `countdown`.
    const src = await Bun.file(new URL("../assets/countdown.js", import.meta.url)).text();
    const body = /const words = \(seconds\) => \{([\s\S]*?)\n {2}\};/.exec(src)![1]!;
    const words = new Function("seconds", body) as (s: number) => string;
    for (const s of [0, 0.2, 7, 59.5, 60, 61, 3_599, 3_600, 3_723, 86_400]) expect(words(s)).toBe(countdown(s));
  });
});
