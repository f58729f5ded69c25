/** The one stylesheet of the web view: readable on a phone, printable, no external fonts or scripts. */
export const STYLE = `
:root { --fg:#1b1f24; --muted:#5b6470; --line:#d8dde3; --bg:#fff; --accent:#0b5cad; --ok:#1a7f37; --bad:#b42318; --info:#5b6470; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
a { color:var(--accent); }
header.top { display:flex; flex-wrap:wrap; gap:.5rem 1.25rem; align-items:center; padding:.6rem 1rem; border-bottom:1px solid var(--line); background:#f6f8fa; }
header .brand { font-weight:700; text-decoration:none; color:var(--fg); }
header nav { display:flex; flex-wrap:wrap; gap:.75rem; }
header nav a[aria-current] { font-weight:700; text-decoration:none; color:var(--fg); }
header .who { margin-left:auto; color:var(--muted); }
.role { border:1px solid var(--line); border-radius:3px; padding:0 .3rem; font-size:.8rem; }
form.inline { display:inline; margin-left:.5rem; }
main { padding:1rem; max-width:1200px; margin:0 auto; }
h1 { font-size:1.35rem; margin:.2rem 0 1rem; overflow-wrap:anywhere; }
h2 { font-size:1.1rem; margin:1.5rem 0 .5rem; }
table { border-collapse:collapse; width:100%; }
th, td { text-align:left; padding:.35rem .5rem; border-bottom:1px solid var(--line); vertical-align:top; word-break:normal; overflow-wrap:break-word; }
/* Words are never broken mid-word; only hashes, ids and paths (.mono) may wrap anywhere. */
td a, th { white-space:normal; }
table.events td:nth-child(3), table.events td:nth-child(4), #checks td:first-child { white-space:nowrap; }
th { font-size:.85rem; color:var(--muted); font-weight:600; }
table.events td:first-child, table.events td:nth-child(2) { white-space:nowrap; }
code, .mono { font-family:ui-monospace, "DejaVu Sans Mono", monospace; font-size:.85em; overflow-wrap:anywhere; }
.badge { white-space:nowrap; display:inline-block; padding:0 .4rem; border-radius:3px; font-size:.8rem; font-weight:600; border:1px solid currentColor; }
.o-pass, .o-accepted { color:var(--ok); }
.o-fail, .o-refused { color:var(--bad); }
.o-info { color:var(--info); }
.panel { border:1px solid var(--line); border-radius:6px; padding:.75rem 1rem; margin:0 0 1rem; }
.panel.bad { border-color:var(--bad); }
.panel.ok { border-color:var(--ok); }
.grid { display:grid; grid-template-columns:repeat(auto-fit, minmax(16rem, 1fr)); gap:1rem; }
dl { display:grid; grid-template-columns:minmax(0, max-content) minmax(0, 1fr); gap:.2rem .8rem; margin:0; }
.panel { min-width:0; }
dt { color:var(--muted); }
dd { margin:0; overflow-wrap:break-word; }
dd.mono { overflow-wrap:anywhere; }
.overview { margin-bottom:1rem; }
.overview .big { font-size:1.6rem; font-weight:700; }
.overview ul { margin:.3rem 0; padding-left:1.2rem; }
.todo { font-weight:600; }
form.filters { display:grid; grid-template-columns:repeat(auto-fit, minmax(10rem, 1fr)); gap:.5rem; align-items:end; margin-bottom:1rem; }
form.filters label { display:flex; flex-direction:column; font-size:.85rem; color:var(--muted); }
input, select, button { font:inherit; padding:.3rem .4rem; }
.pager { display:flex; gap:1rem; margin:1rem 0; flex-wrap:wrap; }
.muted { color:var(--muted); }
.reason { color:var(--bad); font-weight:600; }
footer { padding:1rem; color:var(--muted); font-size:.8rem; border-top:1px solid var(--line); margin-top:2rem; }
.login { max-width:22rem; margin:3rem auto; }
.login label { display:flex; flex-direction:column; margin-bottom:.75rem; }
.error { color:var(--bad); font-weight:600; }
@media (max-width: 640px) {
  table.events thead { display:none; }
  table.events tr { display:block; border-bottom:1px solid var(--line); padding:.4rem 0; }
  table.events td { display:block; border:0; padding:.1rem 0; }
  header .who { margin-left:0; }
  /* On a phone a long path or message may wrap anywhere rather than push the page sideways. */
  td, th, dd, li, p { overflow-wrap:anywhere; }
  table.events td:nth-child(3), table.events td:nth-child(4), #checks td:first-child { white-space:normal; }
  main { padding:.6rem; }
}
@media print {
  header.top nav, header .who form, form.filters, .pager, .downloads { display:none; }
  body { font-size:11pt; }
  a { color:inherit; text-decoration:none; }
  .panel { break-inside:avoid; }
  tr { break-inside:avoid; }
}
`;
