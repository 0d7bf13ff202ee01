// Chat parameters beyond sampling through Vigil's gateway with the official
// OpenAI Node SDK: max_completion_tokens to a reasoning model, logprobs
// whole and streamed, penalties and reasoning_effort (to Anthropic:
// extended thinking), OpenAI's parameters
// the gateway passes through (logit_bias, metadata, store, service_tier,
// prediction, ...), and the refusals.
// test/gateway_params_test.go runs this (node sdk_params_openai.mjs) with
// the gateway's URL and a token in the environment, against the openai
// and anthropic plugins in front of test/openaistub and
// test/anthropicstub, and then checks what reached the upstreams. Any
// failed check throws, and node exits non-zero.
//
// Aliases: chat (openai, gpt-test), reasoner (openai, o4-mini: refuses
// max_tokens as OpenAI's reasoning models do), claude (anthropic only),
// claude-then-openai (anthropic, then openai gpt-test).
import assert from 'node:assert/strict';
import { BadRequestError } from 'openai';
import { client, exchanges, check, done } from './harness.mjs';
const ask = (content) => [{ role: 'user', content }];

// test/openaistub's logprobs: the answer split after each space; token i
// has logprob -(i+1)/8, its UTF-8 bytes, and top alternatives: the token,
// then "<k>" + token, with logprob -(i+1)/8 - k.
const stubLogprobs = (content, top) =>
  content
    .split(/(?<= )/)
    .filter((t) => t !== '')
    .map((token, i) => {
      const lp = -(i + 1) / 8;
      const alts = [];
      for (let k = 0; k < top; k++) {
        const alt = k === 0 ? token : `<${k}>${token}`;
        alts.push({ token: alt, logprob: lp - k, bytes: [...Buffer.from(alt)] });
      }
      return { token, logprob: lp, bytes: [...Buffer.from(token)], top_logprobs: alts };
    });

const badRequest = async (promise, code, param, says) => {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof BadRequestError, `not a BadRequestError: ${err}`);
    assert.equal(err.status, 400);
    assert.equal(err.code, code, err.message);
    if (param !== undefined) assert.equal(err.param, param, err.message);
    assert.match(err.message, says);
    return true;
  });
};

await check('max_completion_tokens to a reasoning model', async () => {
  const r = await client.chat.completions.create({
    model: 'reasoner',
    messages: ask('think about max completion tokens'),
    max_completion_tokens: 64,
    reasoning_effort: 'low',
  });
  assert.equal(r.choices[0].message.content, 'echo: think about max completion tokens');
  assert.equal(r.choices[0].logprobs, null);
  assert.equal(exchanges.at(-1).headers.get('x-vigil-provider'), 'openai-main');
});

await check('max_tokens to a reasoning model: OpenAI refuses it', async () => {
  await badRequest(
    client.chat.completions.create({ model: 'reasoner', messages: ask('old cap name'), max_tokens: 64 }),
    'invalid_request',
    'max_tokens',
    /Use 'max_completion_tokens' instead/,
  );
});

await check('max_tokens and max_completion_tokens together', async () => {
  await badRequest(
    client.chat.completions.create({ model: 'chat', messages: ask('both caps'), max_tokens: 8, max_completion_tokens: 8 }),
    'invalid_parameter_combination',
    'max_tokens',
    /at the same time is not supported/,
  );
});

await check('logprobs, whole', async () => {
  const r = await client.chat.completions.create({
    model: 'chat',
    messages: ask('the sky is blue'),
    logprobs: true,
    top_logprobs: 2,
    temperature: 0,
  });
  const choice = r.choices[0];
  assert.equal(choice.message.content, 'echo: the sky is blue');
  assert.deepEqual(choice.logprobs, { content: stubLogprobs('echo: the sky is blue', 2), refusal: null });
  // A request for logprobs bypasses the response cache.
  assert.equal(exchanges.at(-1).headers.get('x-vigil-cache'), 'bypass');
});

await check('logprobs, streamed', async () => {
  const perChunk = [];
  const stream = client.chat.completions.stream({
    model: 'chat',
    messages: ask('tokens one by one'),
    logprobs: true,
    top_logprobs: 1,
    stream_options: { include_usage: true },
  });
  stream.on('chunk', (c) => {
    const ch = c.choices[0];
    if (ch?.delta?.content) perChunk.push(ch.logprobs.content.length);
  });
  const final = await stream.finalChatCompletion();
  assert.equal(final.choices[0].message.content, 'echo: tokens one by one');
  assert.deepEqual(final.choices[0].logprobs.content, stubLogprobs('echo: tokens one by one', 1));
  assert.deepEqual(perChunk, [1, 1, 1, 1, 1]);
  assert.ok(final.usage.completion_tokens > 0);
});

await check('logprobs: false is accepted', async () => {
  const r = await client.chat.completions.create({ model: 'chat', messages: ask('no logprobs please'), logprobs: false });
  assert.equal(r.choices[0].logprobs, null);
});

await check('penalties and reasoning_effort reach the upstream', async () => {
  await client.chat.completions.create({
    model: 'chat',
    messages: ask('penalised answer'),
    presence_penalty: 0.5,
    frequency_penalty: -0.75,
  });
  const stream = await client.chat.completions.create({
    model: 'reasoner',
    messages: ask('effortful stream'),
    reasoning_effort: 'high',
    max_completion_tokens: 32,
    stream: true,
  });
  let text = '';
  for await (const c of stream) text += c.choices[0]?.delta?.content ?? '';
  assert.equal(text, 'echo: effortful stream');
});

await check('a penalty out of range', async () => {
  await badRequest(
    client.chat.completions.create({ model: 'chat', messages: ask('x'), presence_penalty: 2.5 }),
    'invalid_request',
    'presence_penalty',
    /from -2 to 2/,
  );
});

await check('a penalty for Anthropic: 400 unsupported', async () => {
  await badRequest(
    client.chat.completions.create({ model: 'claude', messages: ask('penalty for claude'), presence_penalty: 0.5 }),
    'unsupported',
    undefined,
    /presence_penalty/,
  );
  await badRequest(
    client.chat.completions.create({ model: 'claude', messages: ask('logprobs from claude'), logprobs: true }),
    'unsupported',
    undefined,
    /logprobs/,
  );
});

await check('a penalty for Anthropic then OpenAI: falls back', async () => {
  const r = await client.chat.completions.create({
    model: 'claude-then-openai',
    messages: ask('fallback with a penalty'),
    frequency_penalty: 0.25,
  });
  assert.equal(r.choices[0].message.content, 'echo: fallback with a penalty');
  const h = exchanges.at(-1).headers;
  assert.equal(h.get('x-vigil-provider'), 'openai-main');
  assert.equal(h.get('x-vigil-attempts'), '2');
  // Without the penalty, the same alias is answered by Anthropic.
  await client.chat.completions.create({ model: 'claude-then-openai', messages: ask('no penalty'), frequency_penalty: 0 });
  assert.equal(exchanges.at(-1).headers.get('x-vigil-provider'), 'anthropic-main');
});

await check('reasoning_effort for Anthropic: extended thinking, its blocks not in the answer', async () => {
  // test/anthropicstub thinks first ("Thinking about: " and the user's
  // text, a signed thinking block) when thinking is enabled.
  const r = await client.chat.completions.create({ model: 'claude', messages: ask('think it over'), reasoning_effort: 'medium' });
  assert.equal(r.choices[0].message.content, 'echo: think it over');
  assert.equal(r.choices[0].finish_reason, 'stop');
  // output_tokens counts the thinking (5 words) and the text (4).
  assert.equal(r.usage.completion_tokens, 9);
  assert.equal(r.usage.completion_tokens_details, undefined);
  assert.equal(exchanges.at(-1).headers.get('x-vigil-provider'), 'anthropic-main');
  const stream = await client.chat.completions.create({
    model: 'claude',
    messages: ask('think while streaming'),
    reasoning_effort: 'high',
    max_completion_tokens: 3000,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage;
  for await (const c of stream) {
    text += c.choices[0]?.delta?.content ?? '';
    if (c.usage) usage = c.usage;
  }
  assert.equal(text, 'echo: think while streaming');
  assert.equal(usage.completion_tokens, 9);
  await badRequest(
    client.chat.completions.create({ model: 'claude', messages: ask('cold thinking'), reasoning_effort: 'low', temperature: 0.2 }),
    'invalid_request',
    'temperature',
    /extended thinking/,
  );
});

await check('OpenAI parameters passed through to the upstream', async () => {
  const r = await client.chat.completions.create({
    model: 'chat',
    messages: ask('pass these through'),
    logit_bias: { 50256: -100, 1734: 5 },
    metadata: { team: 'ml', run: '42' },
    store: true,
    service_tier: 'flex',
    prediction: { type: 'content', content: 'echo: pass these through' },
    verbosity: 'low',
    prompt_cache_key: 'pc-1',
    safety_identifier: 'user-7',
  });
  assert.equal(r.choices[0].message.content, 'echo: pass these through');
  assert.equal(exchanges.at(-1).headers.get('x-vigil-provider'), 'openai-main');
  // What the upstream answers because of them comes back: the tier it
  // used, and how much of the prediction it accepted.
  assert.equal(r.service_tier, 'flex');
  // The upstream's system_fingerprint, as it gave it.
  assert.equal(r.system_fingerprint, 'fp_stub');
  assert.equal(r.usage.completion_tokens_details.accepted_prediction_tokens, 4);
  assert.equal(r.usage.completion_tokens_details.rejected_prediction_tokens, 0);
  const stream = await client.chat.completions.create({
    model: 'chat',
    messages: ask('pass these through streamed'),
    store: false,
    prediction: { type: 'content', content: [{ type: 'text', text: 'echo: pass them' }] },
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage = null;
  const tiers = new Set();
  const fingerprints = new Set();
  for await (const c of stream) {
    text += c.choices[0]?.delta?.content ?? '';
    if (c.usage) usage = c.usage;
    tiers.add(c.service_tier);
    fingerprints.add(c.system_fingerprint);
  }
  assert.equal(text, 'echo: pass these through streamed');
  assert.deepEqual([...tiers], ['default']);
  // In every chunk, the usage chunk too, as OpenAI sends it.
  assert.deepEqual([...fingerprints], ['fp_stub']);
  // "them" is not in the answer: rejected, and billed as a completion token.
  assert.equal(usage.completion_tokens_details.accepted_prediction_tokens, 2);
  assert.equal(usage.completion_tokens_details.rejected_prediction_tokens, 1);
  assert.equal(usage.completion_tokens, 6);
});

await check('a pass-through parameter of the wrong shape', async () => {
  await badRequest(
    client.chat.completions.create({ model: 'chat', messages: ask('x'), metadata: { n: 1 } }),
    'invalid_request',
    'metadata',
    /must be a string/,
  );
  await badRequest(
    client.chat.completions.create({ model: 'chat', messages: ask('x'), logit_bias: { 50256: -101 } }),
    'invalid_request',
    'logit_bias',
    /from -100 to 100/,
  );
});

await check('parameters outside the pass-through are still refused', async () => {
  await badRequest(
    client.chat.completions.create({ model: 'chat', messages: ask('x'), modalities: ['text', 'audio'], audio: { voice: 'alloy', format: 'wav' } }),
    'invalid_request',
    undefined,
    /does not support it/,
  );
});

await check('a pass-through parameter for Anthropic: 400 unsupported, or fallback', async () => {
  await badRequest(
    client.chat.completions.create({ model: 'claude', messages: ask('store for claude'), store: true }),
    'unsupported',
    undefined,
    /anthropic-main does not support store/,
  );
  const r = await client.chat.completions.create({
    model: 'claude-then-openai',
    messages: ask('fallback with metadata'),
    metadata: { via: 'fallback' },
  });
  assert.equal(r.choices[0].message.content, 'echo: fallback with metadata');
  assert.equal(exchanges.at(-1).headers.get('x-vigil-provider'), 'openai-main');
  assert.equal(exchanges.at(-1).headers.get('x-vigil-attempts'), '2');
});

done();
