// A small Markdown renderer for the model's answers. Everything is HTML-escaped first; only the tags made
// here come out (paragraphs, headings, lists, code, emphasis, links to http(s) addresses), so a reply can
// never inject markup or script into the page.
"use strict";

function escapeHtml(text) {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;").replace(/'/g, "&#39;");
}

function renderInline(escaped) {
  return escaped
    .replace(/`([^`]+)`/g, "<code>$1</code>")
    .replace(/\*\*([^*]+)\*\*/g, "<strong>$1</strong>")
    .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, "$1<em>$2</em>")
    .replace(/\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)/g,
      (match, label, url) => `<a href="${url}" target="_blank" rel="noopener noreferrer">${label}</a>`);
}

function renderMarkdown(text) {
  const blocks = [];
  const parts = text.split(/^```[^\n]*\n?/m);
  parts.forEach((part, index) => {
    if (index % 2 === 1) {  // inside a fence
      blocks.push(`<pre><code>${escapeHtml(part.replace(/\n$/, ""))}</code></pre>`);
      return;
    }
    let list = null;
    const flush = () => { if (list) { blocks.push(`<${list.tag}>${list.items.join("")}</${list.tag}>`); list = null; } };
    for (const paragraph of part.split(/\n{2,}/)) {
      for (const line of paragraph.split("\n")) {
        const escaped = escapeHtml(line);
        const heading = /^(#{1,4}) (.*)$/.exec(escaped);
        const bullet = /^\s*[-*] (.*)$/.exec(escaped);
        const numbered = /^\s*\d+[.)] (.*)$/.exec(escaped);
        if (heading) { flush(); blocks.push(`<h${heading[1].length + 2}>${renderInline(heading[2])}</h${heading[1].length + 2}>`); }
        else if (bullet || numbered) {
          const tag = bullet ? "ul" : "ol";
          if (!list || list.tag !== tag) { flush(); list = { tag, items: [] }; }
          list.items.push(`<li>${renderInline((bullet || numbered)[1])}</li>`);
        } else if (line.trim()) { flush(); blocks.push(`<p>${renderInline(escaped)}</p>`); }
      }
      flush();
    }
  });
  return blocks.join("\n");
}
