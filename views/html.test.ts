import { describe, expect, test } from "bun:test";
import { escapeHtml, html, raw } from "./html.ts";

describe("html", () => {
  test("every interpolation is escaped, in text and in attributes", () => {
    const name = `<script>alert("x")</script>' onmouseover='y' \`z\` &amp;`;
    const out = html`<p title="${name}">${name}</p>`.toString();
    expect(out).toBe(
      '<p title="&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;y&#39; &#96;z&#96; &amp;amp;">&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;y&#39; &#96;z&#96; &amp;amp;</p>',
    );
  });

  test("fragments built by the tag nest without double escaping; arrays join; empty values vanish", () => {
    const items = ["a<b", "c"].map((s) => html`<li>${s}</li>`);
    expect(html`<ul>${items}</ul>${null}${undefined}${false}${0}`.toString()).toBe("<ul><li>a&lt;b</li><li>c</li></ul>0");
  });

  test("only an explicit raw() passes markup through", () => {
    expect(html`${raw("<b>ok</b>")}${"<b>no</b>"}`.toString()).toBe("<b>ok</b>&lt;b&gt;no&lt;/b&gt;");
    expect(escapeHtml("&<>\"'`")).toBe("&amp;&lt;&gt;&quot;&#39;&#96;");
  });
});
