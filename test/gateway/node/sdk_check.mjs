// The official OpenAI Node SDK against Vigil's gateway. test/gateway_test.go
// runs this (node sdk_check.mjs) with the gateway's URL and a token in the
// environment, after queueing faults in the upstream stub. Any failed
// check throws, and node exits non-zero.
import assert from 'node:assert/strict';
import OpenAI, { NotFoundError, BadRequestError, APIError, InternalServerError, PermissionDeniedError, AuthenticationError } from 'openai';
import { client, exchanges as sent, check, done } from './harness.mjs';

await check('models.list', async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push(m.id);
  assert.deepEqual(ids, JSON.parse(process.env.VIGIL_ALIASES));
  const one = await client.models.retrieve('default');
  assert.equal(one.id, 'default');
});

await check('chat', async () => {
  const { data, response } = await client.chat.completions
    .create({ model: 'default', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello sdk' }], temperature: 0 })
    .withResponse();
  assert.equal(data.object, 'chat.completion');
  assert.equal(data.choices[0].message.role, 'assistant');
  assert.equal(data.choices[0].message.content, 'echo: hello sdk');
  assert.equal(data.choices[0].finish_reason, 'stop');
  assert.equal(data.usage.prompt_tokens, 4);
  assert.equal(response.headers.get('x-vigil-provider'), 'openai-main');
  assert.equal(response.headers.get('x-vigil-attempts'), '1');
  assert.equal(response.headers.get('x-vigil-cache'), 'miss');
  // The same deterministic request again: served from the response cache
  // (its write is asynchronous, so poll until it has landed).
  let again;
  for (let i = 0; i < 100; i++) {
    again = await client.chat.completions
      .create({ model: 'default', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hello sdk' }], temperature: 0 })
      .withResponse();
    if (again.response.headers.get('x-vigil-cache') === 'hit') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(again.response.headers.get('x-vigil-cache'), 'hit');
  assert.equal(again.data.choices[0].message.content, 'echo: hello sdk');
  assert.equal(again.response.headers.get('x-vigil-attempts'), '0');
});

await check('stream with usage', async () => {
  const stream = await client.chat.completions.create({
    model: 'default', messages: [{ role: 'user', content: 'stream me please' }], stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  let finish = null;
  let usageChunkChoices = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    for (const c of chunk.choices) {
      text += c.delta?.content ?? '';
      finish = c.finish_reason ?? finish;
    }
    if (chunk.usage) {
      usage = chunk.usage;
      usageChunkChoices = chunk.choices.length;
    }
  }
  assert.equal(text, 'echo: stream me please');
  assert.equal(finish, 'stop');
  assert.equal(usage.completion_tokens, 4);
  assert.equal(usageChunkChoices, 0);
});

await check('embeddings, base64 by default', async () => {
  const res = await client.embeddings.create({ model: 'embed', input: ['alpha beta', 'gamma'] });
  const req = sent.findLast((s) => s.url.endsWith('/embeddings'));
  assert.equal(req.body.encoding_format, 'base64', 'the SDK asks for base64 unless told otherwise');
  assert.equal(res.data.length, 2);
  const want = JSON.parse(process.env.VIGIL_EXPECT_EMBEDDING);
  assert.equal(res.data[0].embedding.length, want.length);
  res.data[0].embedding.forEach((v, i) => assert.equal(Math.fround(v), Math.fround(want[i]), `value ${i}`));
  const floats = await client.embeddings.create({ model: 'lexical', input: 'the gpu fleet', encoding_format: 'float' });
  assert.equal(floats.data[0].embedding.length, 64);
  const norm = floats.data[0].embedding.reduce((s, v) => s + v * v, 0);
  assert.ok(Math.abs(norm - 1) < 1e-5, `hashembed vector norm² ${norm}`);
});

await check('embeddings of token ids, as LangChain sends them', async () => {
  // cl100k_base ids of the sentence (tiktoken's encoding for every OpenAI
  // embedding model): the gateway decodes them, so each provider, the
  // lexical hashembed included, embeds the same text.
  const text = 'the quick brown fox jumps over the lazy dog';
  const ids = [1820, 4062, 14198, 39935, 35308, 927, 279, 16053, 5679];
  for (const model of ['embed', 'lexical']) {
    const byIds = await client.embeddings.create({ model, input: [ids, ids.slice(0, 3)], encoding_format: 'float' });
    const byText = await client.embeddings.create({ model, input: [text, 'the quick brown'], encoding_format: 'float' });
    assert.deepEqual(byIds.data.map((d) => d.embedding), byText.data.map((d) => d.embedding), model);
  }
  await assert.rejects(
    client.embeddings.create({ model: 'embed', input: [[1820, 100257]] }),
    (e) => e instanceof BadRequestError && e.param === 'input[0]' && /100257/.test(e.message),
  );
});

await check('images in a user message (vision)', async () => {
  // A 1x1 PNG inline, and an image by URL, as the SDK's docs show them;
  // both upstream stubs describe each image they receive in their echo.
  const png = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=';
  const content = [
    { type: 'text', text: 'describe ' },
    { type: 'image_url', image_url: { url: `data:image/png;base64,${png}`, detail: 'low' } },
    { type: 'image_url', image_url: { url: 'https://img.test/cat.jpg' } },
  ];
  const want = `echo: describe [image image/png ${Buffer.from(png, 'base64').length} bytes][image https://img.test/cat.jpg]`;
  for (const model of ['default', 'claude']) {
    const res = await client.chat.completions.create({ model, messages: [{ role: 'user', content }] });
    assert.equal(res.choices[0].message.content, want, model);
  }
  await assert.rejects(
    client.chat.completions.create({ model: 'default', messages: [{ role: 'system', content: [content[1]] }, { role: 'user', content: 'x' }] }),
    (e) => e instanceof BadRequestError && e.param === 'messages[0].content[0].type',
  );
});

await check('json_schema passthrough', async () => {
  const res = await client.chat.completions.create({
    model: 'default',
    messages: [{ role: 'user', content: 'structured' }],
    response_format: {
      type: 'json_schema',
      json_schema: { name: 'reply', strict: true, schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false } },
    },
  });
  assert.deepEqual(JSON.parse(res.choices[0].message.content), { answer: 'structured' });
});

await check('404 unknown model', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'no-such-alias', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof NotFoundError && e.status === 404 && e.code === 'model_not_found' && e.param === 'model',
  );
});

await check('400 invalid request', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'x' }], temperature: 5 }),
    (e) => e instanceof BadRequestError && e.status === 400 && e.param === 'temperature',
  );
});

await check('503 upstream exhausted', async () => {
  await assert.rejects(
    client.chat.completions.create({ model: 'down', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof InternalServerError && e.status === 503 && e.code === 'overloaded' && e.headers.get('x-vigil-attempts') === '3',
  );
});

await check('mid-stream failure is an error, not a truncation', async () => {
  const stream = await client.chat.completions.create({ model: 'cut', messages: [{ role: 'user', content: 'one two three four five' }], stream: true });
  let text = '';
  await assert.rejects(
    (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    })(),
    (e) => e instanceof APIError && /mid-stream/.test(e.message),
  );
  assert.ok(text.length > 0 && text !== 'echo: one two three four five', `partial text ${JSON.stringify(text)}`);
});

await check('anthropic behind the OpenAI SDK', async () => {
  const stream = await client.chat.completions.create({
    model: 'claude', messages: [{ role: 'user', content: 'hello from node' }], stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? '';
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, 'echo: hello from node');
  assert.equal(usage.completion_tokens, 4);
});

await check('read token cannot call chat', async () => {
  const reader = new OpenAI({ baseURL: process.env.VIGIL_BASE_URL, apiKey: process.env.VIGIL_READ_TOKEN, maxRetries: 0 });
  await assert.rejects(
    reader.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof PermissionDeniedError && e.status === 403 && e.type === 'permission_error' && e.code === 'insufficient_permissions',
  );
  const ids = [];
  for await (const m of reader.models.list()) ids.push(m.id);
  assert.ok(ids.includes('default'));
});

await check('wrong key is an AuthenticationError', async () => {
  const stranger = new OpenAI({ baseURL: process.env.VIGIL_BASE_URL, apiKey: 'sk-not-a-vigil-token-0123', maxRetries: 0 });
  await assert.rejects(
    stranger.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: 'x' }] }),
    (e) => e instanceof AuthenticationError && e.status === 401 && e.code === 'invalid_api_key' && e.type === 'invalid_request_error',
  );
});

if (process.env.VIGIL_LLM_TOKEN) {
  await check('llm token calls the gateway', async () => {
    const app = new OpenAI({ baseURL: process.env.VIGIL_BASE_URL, apiKey: process.env.VIGIL_LLM_TOKEN, maxRetries: 0 });
    const res = await app.chat.completions.create({ model: 'solo', messages: [{ role: 'user', content: 'from an llm token' }] });
    assert.equal(res.choices[0].message.content, 'echo: from an llm token');
  });
}

done();
