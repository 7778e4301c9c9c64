/**
 * Keys a JSON text names twice within one object, at any depth, read from the raw text:
 * `JSON.parse` keeps the last of two equal keys silently, so it cannot tell. Each is reported as
 * its path (`role`, `err.message`). Assumes well-formed JSON (parse it too to be sure).
 *
 * `duplicateKeys('{"role":"all","msg":"x","role":"all"}')` → `["role"]`
 */
export function duplicateKeys(text: string): string[] {
  type Frame = { kind: "object"; keys: Set<string>; path: string; expectKey: boolean; last: string } | { kind: "array"; path: string };
  const stack: Frame[] = [];
  const dupes: string[] = [];
  const top = () => stack[stack.length - 1];
  const childPath = () => {
    const f = top();
    if (!f) return "";
    return f.kind === "object" ? (f.path ? `${f.path}.${f.last}` : f.last) : `${f.path}[]`;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
      const f = top();
      if (f?.kind === "object" && f.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (f.keys.has(key)) dupes.push(f.path ? `${f.path}.${key}` : key);
        f.keys.add(key);
        f.last = key;
        f.expectKey = false;
      }
      i = j;
    } else if (c === "{") {
      stack.push({ kind: "object", keys: new Set(), path: childPath(), expectKey: true, last: "" });
    } else if (c === "[") {
      stack.push({ kind: "array", path: childPath() });
    } else if (c === "}" || c === "]") {
      stack.pop();
    } else if (c === ",") {
      const f = top();
      if (f?.kind === "object") f.expectKey = true;
    }
  }
  return dupes;
}

/** A pino destination that keeps every line as written, raw. */
export function captureLines(): { lines: string[]; write(chunk: string): boolean } {
  const lines: string[] = [];
  return {
    lines,
    write(chunk: string) {
      for (const l of chunk.split("\n")) if (l) lines.push(l);
      return true;
    },
  };
}
