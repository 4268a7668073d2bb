"""The pages' only style sheet and script, inlined (no external assets), and the CSP allowing them.

The Content-Security-Policy admits exactly these two blocks by their SHA-256, so markup that ever
slipped through escaping could still run no script and load nothing.
"""

import base64
import hashlib

CSS = """
:root{color-scheme:light dark;--fg:#1f2328;--mute:#656d76;--line:#d0d7de;--bg:#fff;--alt:#f6f8fa;
--link:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--mute:#8d96a0;--line:#30363d;--bg:#0d1117;
--alt:#161b22;--link:#4493f8}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:72rem;padding:1rem;font:15px/1.45 system-ui,-apple-system,"Segoe UI",
Roboto,"DejaVu Sans",sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
header{display:flex;flex-wrap:wrap;gap:.25rem .75rem;align-items:baseline}
header .brand{font-weight:600;color:var(--fg)}
nav.crumbs{font-size:1.15rem;overflow-wrap:anywhere}
nav.crumbs .sep{color:var(--mute);padding:0 .2rem}
.bar{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;margin:.75rem 0}
.bar input{flex:1 1 14rem;max-width:24rem;font:inherit;padding:.35rem .55rem;border:1px solid
var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
.count,.hint,.empty{color:var(--mute)}
.bar .archive{margin-left:auto;color:var(--mute)}
table{width:100%;border-collapse:collapse}
th,td{padding:.35rem .5rem;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;white-space:nowrap}th a{color:var(--fg)}
th[aria-sort=ascending] a::after{content:" \\25B2";font-size:.7em}
th[aria-sort=descending] a::after{content:" \\25BC";font-size:.7em}
tbody tr:nth-child(even){background:var(--alt)}
td.name{overflow-wrap:anywhere;width:100%}
.icon{display:inline-block;width:1.05em;height:1.05em;margin-right:.45rem;vertical-align:-.17em;
background:no-repeat center/contain}
.icon.dir{background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' \
viewBox='0 0 16 16'%3E%3Cpath fill='%2354aeff' d='M1 3.5A1.5 1.5 0 0 1 2.5 2h3.6l1.5 1.5h5.9A1.5 \
1.5 0 0 1 15 5v7.5a1.5 1.5 0 0 1-1.5 1.5h-11A1.5 1.5 0 0 1 1 12.5z'/%3E%3C/svg%3E")}
.icon.file{background-image:url("data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' \
viewBox='0 0 16 16'%3E%3Cpath fill='none' stroke='%238d96a0' stroke-linejoin='round' \
d='M3.5 1.5h6l3 3v10h-9z M9.5 1.5v3h3'/%3E%3C/svg%3E")}
td.num,th.num{text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
td.time{white-space:nowrap;font-variant-numeric:tabular-nums;color:var(--mute)}
a.view{font-size:.85em;margin-left:.5rem;padding:0 .35rem;border:1px solid var(--line);
border-radius:4px}
.pager{display:flex;flex-wrap:wrap;gap:.75rem;margin:.75rem 0}
section{margin:1rem 0}section h2{font-size:1.1rem;margin:.25rem 0}
section ul{margin:.25rem 0;padding-left:1.25rem}
section li .note{color:var(--mute);margin-left:.5rem}
.error h1{font-size:1.4rem}code{overflow-wrap:anywhere}
@media (max-width:560px){body{padding:.6rem;font-size:14px}th.time,td.time{display:none}}
"""

JS = """
(() => {
  const table = document.getElementById("entries");
  const input = document.getElementById("filter");
  if (!table || !input) return;
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const complete = table.dataset.complete === "1";
  const shown = document.getElementById("shown");
  const hint = document.getElementById("hint");
  function applyFilter() {
    const needle = input.value.trim().toLowerCase();
    let visible = 0;
    for (const row of rows) {
      const hit = !needle || row.dataset.name.toLowerCase().includes(needle);
      row.hidden = !hit;
      if (hit) visible++;
    }
    shown.textContent = needle ? visible + " of " + rows.length + " on this page shown" : "";
    if (hint) hint.hidden = !needle;
  }
  input.addEventListener("input", applyFilter);
  input.form.addEventListener("submit", (event) => {
    if (complete) { event.preventDefault(); applyFilter(); }
  });
  if (!complete) return;
  const value = {
    name: (row) => row.dataset.name.toLowerCase(),
    size: (row) => Number(row.dataset.size),
    time: (row) => (row.dataset.time === "" ? -Infinity : Number(row.dataset.time)),
  };
  const compare = (a, b) => (a < b ? -1 : a > b ? 1 : 0);
  function sortBy(key, descending) {
    const sign = descending ? -1 : 1;
    rows.sort((a, b) => (Number(b.dataset.dir) - Number(a.dataset.dir))
      || sign * compare(value[key](a), value[key](b))
      || compare(value.name(a), value.name(b)));
    body.append(...rows);
    for (const th of table.tHead.rows[0].cells) {
      const link = th.querySelector("a[data-sort]");
      if (link) th.setAttribute("aria-sort", link.dataset.sort === key
        ? (descending ? "descending" : "ascending") : "none");
    }
  }
  for (const link of table.querySelectorAll("th a[data-sort]")) {
    link.addEventListener("click", (event) => {
      event.preventDefault();
      const state = link.parentElement.getAttribute("aria-sort");
      const descending = state === "none" ? link.dataset.first === "desc" : state === "ascending";
      sortBy(link.dataset.sort, descending);
    });
  }
})();
"""


def _sha256(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src {_sha256(CSS)}; script-src {_sha256(JS)}; "
    "img-src 'self' data:; form-action 'self'; base-uri 'self'; frame-ancestors 'none'"
)
