// Runs the script of mogr serve's HTML index (argv[2], a file) against the server at argv[3], with the
// cells it fills (argv[4], JSON [[data-conv, data-size], ...]) standing in for the page's DOM: every
// cell comes into view at once, node's own fetch asks the server. Prints each cell's text and title
// as JSON once every cell is filled.
const fs = require("fs");
const [script, base, cellsJson] = process.argv.slice(2);
const cells = JSON.parse(cellsJson).map(([conv, size]) => {
  const a = { textContent: "" };
  return { dataset: { conv, size: String(size) }, title: "", className: "n", querySelector: () => a, a };
});
globalThis.document = { querySelectorAll: () => cells };
globalThis.IntersectionObserver = class {
  constructor(callback) { this.callback = callback; }
  observe(target) { queueMicrotask(() => this.callback([{ isIntersecting: true, target }])); }
  unobserve() {}
};
const serverFetch = fetch;
let inFlight = 0, most = 0;
globalThis.fetch = async (url) => {
  most = Math.max(most, ++inFlight);
  try { return await serverFetch(base + url); } finally { inFlight--; }
};
(0, eval)(fs.readFileSync(script, "utf8"));
const done = () => {
  if (!cells.every((c) => c.a.textContent)) return setTimeout(done, 50);
  console.log(JSON.stringify({ most, cells: cells.map((c) => ({ conv: c.dataset.conv, text: c.a.textContent, title: c.title })) }));
};
done();
