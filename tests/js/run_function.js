// Runs a CloudFront Function's code on sample viewer-request events, as CloudFront would: reads the
// code from the file named by the first argument and a JSON array of {accept, query, headers} from
// stdin, and prints a JSON array of the x-mogr-accept value each request leaves with (null: none).
// Driven by tests/tests/template.rs, which takes the code from template.yaml.
'use strict';
const fs = require('fs');

const code = fs.readFileSync(process.argv[2], 'utf8');
// eslint-disable-next-line no-new-func
const handler = new Function(code + '\nreturn handler;')();
const samples = JSON.parse(fs.readFileSync(0, 'utf8'));

const out = samples.map((s) => {
  const headers = {};
  if (s.accept !== null) headers.accept = { value: s.accept };
  for (const [k, v] of Object.entries(s.headers || {})) headers[k] = { value: v };
  // CloudFront hands the query over parsed: each name (as sent) with its value
  const querystring = {};
  for (const pair of s.query.split('&').filter(Boolean)) {
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    querystring[name] = { value: eq < 0 ? '' : pair.slice(eq + 1) };
  }
  const event = {
    version: '1.0',
    context: { eventType: 'viewer-request' },
    viewer: { ip: '192.0.2.1' },
    request: { method: 'GET', uri: '/photo.jpg', querystring, headers, cookies: {} },
  };
  const request = handler(event);
  if (request.uri !== '/photo.jpg' || request.querystring !== querystring) {
    throw new Error('the function changed the URL');
  }
  const h = request.headers['x-mogr-accept'];
  return h ? h.value : null;
});
process.stdout.write(JSON.stringify(out));
