// Counts a hold's deadline down once a second, between the page's own 2 s refreshes. The server
// renders the remaining time (and the page reads without this file); each `[data-countdown]`
// element carries its deadline (`datetime`) and the server's clock when it was rendered
// (`data-server-now`), so a browser whose clock is wrong still counts the server's time.
(() => {
  "use strict";
  const seen = new WeakMap();

  /** The same words as the server's `countdown()`: "1 h 2 min 3 s", "4 min 7 s", "9 s". */
  const words = (seconds) => {
    const s = Math.max(0, Math.ceil(seconds));
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const parts = [];
    if (h) parts.push(`${h} h`);
    if (h || m) parts.push(`${m} min`);
    parts.push(`${s % 60} s`);
    return parts.join(" ");
  };

  const tick = () => {
    for (const el of document.querySelectorAll("[data-countdown]")) {
      const deadline = Date.parse(el.getAttribute("datetime") ?? "");
      const serverNow = Number(el.getAttribute("data-server-now"));
      if (!Number.isFinite(deadline) || !Number.isFinite(serverNow)) continue;
      // A refresh (morph) brings a new server time: count from that moment on.
      let mark = seen.get(el);
      if (!mark || mark.serverNow !== serverNow) {
        mark = { serverNow, at: performance.now() };
        seen.set(el, mark);
      }
      const left = deadline - (mark.serverNow + (performance.now() - mark.at));
      const text = words(left / 1000);
      if (el.textContent !== text) el.textContent = text;
    }
  };

  setInterval(tick, 1000);
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", tick);
  else tick();
})();
