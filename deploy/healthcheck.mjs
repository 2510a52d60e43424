// Container health check: `node deploy/healthcheck.mjs [/healthz|/readyz]` exits 0 when the worker answers 200.
// Asks the port and address the worker was given through the environment (CERTFLOW_HTTP_PORT, CERTFLOW_HTTP_HOST);
// a wildcard address is asked on loopback. Plain JavaScript: no tsx start-up cost every 30 seconds.
/* global process, fetch, AbortSignal, console */
const path = process.argv[2] ?? '/healthz';
const port = process.env.CERTFLOW_HTTP_PORT || '9464';
const configured = process.env.CERTFLOW_HTTP_HOST;
const host = !configured || configured === '0.0.0.0' || configured === '::' ? '127.0.0.1' : configured;
const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}${path}`;

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(4000) });
  const body = (await res.text()).trim();
  console.log(`${res.status} ${body}`);
  process.exit(res.status === 200 ? 0 : 1);
} catch (err) {
  console.log(`${url}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
