// The page around the sections: one HTML file with its CSS inline and no script, font, image or
// style from anywhere else (thumbnails and the preview are data: URLs, charts are inline SVG), so
// it opens offline, can be mailed or archived with a submission, and prints.

export function esc(s: unknown): string {
  return String(s).replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

/** 0.4166 → "41.7%"; null → "–". */
export function pct(x: number | null | undefined, digits = 1): string {
  return typeof x === 'number' && Number.isFinite(x) ? `${(x * 100).toFixed(digits)}%` : '–';
}

export function num(x: number | null | undefined, digits = 4): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(digits) : '–';
}

export function duration(ms: number | null): string {
  if (ms === null) return '–';
  if (ms < 1000) return `${ms.toFixed(0)} ms`;
  const s = ms / 1000;
  return s < 120 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
}

export interface Cell {
  html: string;
  cls?: string;
  title?: string;
}
type CellLike = Cell | string | number;

/** An HTML table; strings are escaped, Cells carry HTML already made safe by the caller. */
export function table(headers: string[], rows: CellLike[][], cls = ''): string {
  const cell = (c: CellLike, tag: string): string => {
    const x = typeof c === 'object' ? c : { html: esc(c) };
    return `<${tag}${x.cls ? ` class="${x.cls}"` : ''}${x.title ? ` title="${esc(x.title)}"` : ''}>${x.html}</${tag}>`;
  };
  return `<table${cls ? ` class="${cls}"` : ''}><thead><tr>${headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => cell(c, 'td')).join('')}</tr>`).join('')}</tbody></table>`;
}

export interface Section {
  id: string;
  title: string;
  body: string;
}

export function chart(svg: string, caption: string): string {
  return `<figure class="chart">${svg}<figcaption>${esc(caption)}</figcaption></figure>`;
}

const CSS = `
:root { color-scheme: light; --fg: #1d1d1f; --muted: #666; --line: #ddd; --best: #fff3b0; --accent: #2b6cb0; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); margin: 0; background: #fafafa; }
header, main { max-width: 1180px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 20px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; padding-top: 8px; border-top: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 6px; }
nav { margin: 10px 0 0; display: flex; flex-wrap: wrap; gap: 4px 14px; }
nav a { color: var(--accent); text-decoration: none; }
.meta { color: var(--muted); margin: 0; }
.meta code, td code { font-size: 12px; }
section { background: white; border: 1px solid var(--line); border-radius: 6px; padding: 4px 18px 16px; margin: 16px 0; }
section > h2 { border-top: 0; }
table { border-collapse: collapse; margin: 8px 0 12px; font-variant-numeric: tabular-nums; }
th, td { border-bottom: 1px solid var(--line); padding: 3px 10px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; }
td.n { text-align: right; }
td.best { background: var(--best); font-weight: 600; }
tr.fused td { font-weight: 600; border-top: 2px solid #999; }
.chart { margin: 8px 0; overflow-x: auto; }
.chart svg { max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 12px; }
.note { color: var(--muted); }
.missing { color: #9b2c2c; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; margin: 8px 0; }
.gallery figure { margin: 0; border: 1px solid var(--line); border-radius: 4px; padding: 6px; background: #fff; break-inside: avoid; }
.gallery img { display: block; width: 100%; height: auto; image-rendering: pixelated; background: #eee; }
.gallery figcaption { color: var(--fg); font-size: 12px; overflow-wrap: anywhere; }
.gallery .truth { color: #276749; }
.gallery .pred { color: #9b2c2c; }
.preview img { max-width: 100%; height: auto; image-rendering: pixelated; border: 1px solid var(--line); }
.delta-up { color: #276749; } .delta-down { color: #9b2c2c; }
@media print {
  body { background: white; font-size: 11px; }
  header, main { max-width: none; padding: 0; }
  nav { display: none; }
  section { border: 0; padding: 0; margin: 0 0 12px; break-inside: auto; }
  h2 { break-after: avoid; }
  .chart, table, .gallery figure, .preview { break-inside: avoid; }
  .chart { overflow: visible; }
  td.best { background: none; text-decoration: underline; }
}`;

export function page(title: string, headerHtml: string, sections: Section[]): string {
  const nav = sections.map((s) => `<a href="#${esc(s.id)}">${esc(s.title)}</a>`).join('');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src data:; style-src 'unsafe-inline'">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<header>${headerHtml}<nav>${nav}</nav></header>
<main>
${sections.map((s) => `<section id="${esc(s.id)}" data-section="${esc(s.id)}"><h2>${esc(s.title)}</h2>\n${s.body}</section>`).join('\n')}
</main>
</body>
</html>
`;
}
