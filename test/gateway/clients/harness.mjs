// What the client scripts share: the gateway's URL and token from the
// environment (VIGIL_BASE_URL, VIGIL_TOKEN), a fetch that records every
// exchange (each client takes it as an option), and a runner that names
// each check that passed and prints {"ok": true, "checks": [...]} at the
// end (the Go tests look for it; a failed check throws and node exits
// non-zero).

export const baseURL = process.env.VIGIL_BASE_URL;
export const apiKey = process.env.VIGIL_TOKEN;

// exchanges are the client's requests in order: url, parsed JSON body,
// the gateway's status and headers.
export const exchanges = [];

export const recordingFetch = async (url, init) => {
  const res = await fetch(url, init);
  let body = null;
  if (typeof init?.body === 'string') body = JSON.parse(init.body);
  exchanges.push({ url: String(url), body, status: res.status, headers: res.headers });
  return res;
};

// last is the last exchange whose URL ends with path.
export const last = (path) => exchanges.findLast((x) => x.url.endsWith(path));

const checks = [];

// check runs one named check.
export const check = async (name, fn) => {
  try {
    await fn();
  } catch (err) {
    console.error(`check ${JSON.stringify(name)} failed`);
    throw err;
  }
  checks.push(name);
};

// done prints the result line the Go tests wait for.
export const done = () => console.log(JSON.stringify({ ok: true, checks }));
