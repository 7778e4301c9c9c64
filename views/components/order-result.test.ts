import { describe, expect, test } from "bun:test";
import { describeReason, linesSummary, orderResult, parseAnswer } from "./order-result.ts";

const ID = "0b6f6a52-3c1e-4a8e-9d2f-5b7c1e2a9f10";
const lines = [
  { item_id: "ps5", quantity: 1 },
  { item_id: "dualsense", quantity: 2 },
];

describe("order results", () => {
  test("a cancel accepted while inventory is away reads as cancelling, in the order's own words", () => {
    const body = JSON.stringify({ order_id: ID, lines, status: "cancelling", reason: "cancel_requested", message: "Cancelling: the stock is being given back." });
    const html = String(orderResult({ status: 202, body, replayed: false, orderId: ID }, new Map(), { message: true }));
    expect(html).toContain('data-http-status="202" data-order-state="cancelling"');
    expect(html).toContain('<span class="badge badge--cancelling">cancelling</span>');
    expect(html).toContain("Cancelling: the stock is being given back.");
    expect(html).toContain("2 lines, 3 units");
  });

  test("a 409 says why in the problem's words", () => {
    const body = JSON.stringify({ type: "x", title: "This order cannot be cancelled", status: 409, detail: `Order ${ID} is rejected: it took no stock and cannot be cancelled.`, order_status: "rejected" });
    const html = String(orderResult({ status: 409, body, replayed: false, orderId: ID }, new Map(), { message: true }));
    expect(html).toContain('data-order-state="rejected"');
    expect(html).toContain("took no stock and cannot be cancelled");
  });

  test("a rejected order lists every refused line with the quantity asked, escaped", () => {
    const body = JSON.stringify({
      status: 422,
      detail: "rejected",
      order_status: "rejected",
      reason: "insufficient_stock",
      lines: [...lines, { item_id: "x<y", quantity: 3 }],
      rejected_lines: [
        { item_id: "dualsense", reason: "insufficient_stock" },
        { item_id: "x<y", reason: "unknown_item" },
      ],
    });
    const html = String(orderResult({ status: 422, body, replayed: false, orderId: ID }, new Map([["dualsense", "Pad <b>"]])));
    expect(html).toContain('<li class="result__line" data-item-id="dualsense" data-line-reason="insufficient_stock"><code>dualsense</code> Pad &lt;b&gt; × 2: <strong>not enough stock</strong></li>');
    expect(html).toContain('data-item-id="x&lt;y" data-line-reason="unknown_item"><code>x&lt;y</code> × 3: <strong>no such item</strong>');
    expect(html).toContain("nothing was taken");
  });

  test("a body that is not JSON still shows its status", () => {
    expect(parseAnswer({ status: 500, body: "oops" }).state).toBe("unknown");
    expect(String(orderResult({ status: 500, body: "oops", replayed: false, orderId: null }))).toContain('data-http-status="500"');
  });

  test("reasons and summaries in words", () => {
    expect(describeReason("inventory_unavailable:timeout")).toBe("inventory did not answer (timeout); queued for retry");
    expect(describeReason("cancelled")).toBe("cancelled");
    expect(describeReason(null)).toBe("");
    expect(linesSummary([{ item_id: "a", quantity: 1 }])).toBe("1 line, 1 unit");
    expect(linesSummary([{ item_id: "a", quantity: 1200 }, { item_id: "b", quantity: 1 }])).toBe("2 lines, 1,201 units");
  });
});
