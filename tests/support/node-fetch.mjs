// Sends one request with Node's own fetch (undici) and prints what came back as one JSON line.
// Node's fetch writes the whole body before it reads the answer, unlike Bun's fetch or curl:
// the client the oversize-body tests need. Usage:
//   node node-fetch.mjs '{"url":"…","method":"POST","headers":{…},"bodyBytes":2097152,"chunked":false}'
// The body is a valid order padded with spaces to `bodyBytes`, sent with a Content-Length, or
// as a stream (chunked, no length) with `chunked`.
const { url, method = "POST", headers = {}, bodyBytes = 0, chunked = false } = JSON.parse(process.argv[2]);
const order = Buffer.from(JSON.stringify({ item_id: "ps5", quantity: 1 }));
const body = Buffer.alloc(Math.max(bodyBytes, order.length), 0x20);
order.copy(body);
const CHUNK = 64 * 1024;
const stream = () => {
  let at = 0;
  return new ReadableStream({
    pull(c) {
      if (at >= body.length) return c.close();
      c.enqueue(body.subarray(at, at + CHUNK));
      at += CHUNK;
    },
  });
};
try {
  const res = await fetch(url, { method, headers, body: chunked ? stream() : body, duplex: "half" });
  const text = await res.text();
  console.log(JSON.stringify({ status: res.status, headers: Object.fromEntries(res.headers), body: text }));
} catch (err) {
  console.log(JSON.stringify({ error: err.cause?.code ?? err.cause?.message ?? err.message }));
}
