// What the gateway's SDK scripts share: the official OpenAI Node SDK's
// client, pointed at the gateway by the environment (VIGIL_BASE_URL,
// VIGIL_TOKEN), recording every exchange; and a runner that names each
// check that passed and prints {"ok": true, "checks": [...]} at the end
// (the Go tests look for it; a failed check throws and node exits
// non-zero).
import OpenAI from 'openai';

// exchanges are the client's requests in order: url, parsed JSON body,
// the gateway's answer headers, and its x-vigil-cache and
// x-vigil-attempts headers.
export const exchanges = [];

const recordingFetch = async (url, init) => {
  const res = await fetch(url, init);
  exchanges.push({
    url: String(url),
    body: init?.body ? JSON.parse(init.body) : null,
    headers: res.headers,
    cache: res.headers.get('x-vigil-cache'),
    attempts: res.headers.get('x-vigil-attempts'),
  });
  return res;
};

export const client = new OpenAI({
  baseURL: process.env.VIGIL_BASE_URL,
  apiKey: process.env.VIGIL_TOKEN,
  maxRetries: 0,
  timeout: 30_000,
  fetch: recordingFetch,
});

const checks = [];

// check runs one named check.
export const check = async (name, fn) => {
  await fn();
  checks.push(name);
};

// done prints the result line the Go tests wait for.
export const done = () => console.log(JSON.stringify({ ok: true, checks }));
