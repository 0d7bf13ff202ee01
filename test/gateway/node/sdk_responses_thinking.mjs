// A Responses API tool loop with reasoning.effort through Vigil's
// gateway, with the official OpenAI Node SDK, against the anthropic
// plugin and test/anthropicstub (which answers with a signed thinking
// block first, a redacted_thinking block after it when the user's text
// holds "[redacted-thinking]", calls the first tool with {"city": <user
// text>}, answers tool results with "tool said: RESULT", and refuses a
// tool-loop continuation whose assistant turn does not start with its
// thinking blocks, or whose blocks came back changed). The reasoning item
// goes back three ways: by value with its encrypted_content (store:
// false, include), by value without it (store on: read from the item
// store by id), and through previous_response_id.
// test/gateway_responses_thinking_test.go runs this (node
// sdk_responses_thinking.mjs) with the gateway's URL and a token in the
// environment, then checks what the stub received. Any failed check
// throws, and node exits non-zero.
import assert from 'node:assert/strict';
import { BadRequestError } from 'openai';
import { client, exchanges, check, done } from './harness.mjs';

const model = process.env.VIGIL_THINKING_ALIAS ?? 'claude-tools';
const tools = [
  { type: 'function', name: 'get_weather', description: 'The weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } }, strict: false },
];
const reasoning = { effort: 'low' };

// assertReasoning checks an answer's first output item: a reasoning item
// whose summary is the thinking text, with encrypted_content only when
// asked for (and then packing the blocks: a thinking block with that
// text, and a redacted one when asked).
const assertReasoning = (item, text, { encrypted, redacted }) => {
  assert.equal(item.type, 'reasoning');
  assert.match(item.id, /^rs_/);
  assert.deepEqual(item.summary, [{ type: 'summary_text', text }]);
  if (!encrypted) {
    assert.equal(item.encrypted_content, undefined, JSON.stringify(item));
    return;
  }
  const packed = JSON.parse(Buffer.from(item.encrypted_content, 'base64').toString());
  assert.equal(packed.vigil_thinking, 1);
  assert.equal(packed.blocks.length, redacted ? 2 : 1, JSON.stringify(packed));
  assert.equal(packed.blocks[0].type, 'thinking');
  assert.equal(packed.blocks[0].thinking, text);
  assert.ok(packed.blocks[0].signature.length > 10);
  if (redacted) assert.equal(packed.blocks[1].type, 'redacted_thinking');
};

await check('tool loop with reasoning.effort, store false, encrypted_content by value', async () => {
  const text = 'weather in Paris [redacted-thinking]';
  const input = [{ role: 'user', content: text }];
  const opts = { model, tools, reasoning, store: false, include: ['reasoning.encrypted_content'] };
  const first = await client.responses.create({ ...opts, input });
  assert.deepEqual(first.output.map((o) => o.type), ['reasoning', 'message', 'function_call']);
  assertReasoning(first.output[0], `Thinking about: ${text}`, { encrypted: true, redacted: true });
  const call = first.output[2];
  assert.deepEqual(JSON.parse(call.arguments), { city: text });
  // The usual stateless loop: the answer's output items back as they
  // came, then the call's output.
  const second = await client.responses.create({ ...opts, input: [...input, ...first.output, { type: 'function_call_output', call_id: call.call_id, output: '18C' }] });
  assert.equal(second.output_text, 'tool said: 18C');
  assertReasoning(second.output[0], 'Thinking about: ', { encrypted: true, redacted: false });
  const sent = exchanges.at(-1).body.input;
  assert.equal(sent[1].type, 'reasoning');
  assert.equal(sent[1].encrypted_content, first.output[0].encrypted_content);

  // Without the reasoning item: refused before any upstream call, saying
  // how to send it.
  await assert.rejects(
    client.responses.create({ ...opts, input: [...input, call, { type: 'function_call_output', call_id: call.call_id, output: '18C' }] }),
    (e) => e instanceof BadRequestError && e.status === 400 && e.param === 'input[1]' && /reasoning\.encrypted_content/.test(e.message) && /without reasoning\.effort/.test(e.message),
  );
  // With a block changed: the upstream's own refusal.
  const packed = JSON.parse(Buffer.from(first.output[0].encrypted_content, 'base64').toString());
  packed.blocks[0].thinking = 'something else';
  const changed = { ...first.output[0], encrypted_content: Buffer.from(JSON.stringify(packed)).toString('base64') };
  await assert.rejects(
    client.responses.create({ ...opts, input: [...input, changed, call, { type: 'function_call_output', call_id: call.call_id, output: '18C' }] }),
    (e) => e instanceof BadRequestError && e.status === 400 && /Invalid `signature` in `thinking` block/.test(e.message),
  );
});

await check('tool loop with reasoning.effort, streamed, store on, items back without encrypted_content', async () => {
  const text = 'weather in Oslo';
  const input = [{ role: 'user', content: text }];
  const summary = [];
  const first = await client.responses
    .stream({ model, tools, reasoning, input })
    .on('response.reasoning_summary_text.delta', (e) => summary.push(e.delta))
    .finalResponse();
  assert.deepEqual(first.output.map((o) => o.type), ['reasoning', 'message', 'function_call']);
  assertReasoning(first.output[0], `Thinking about: ${text}`, { encrypted: false });
  assert.equal(summary.join(''), `Thinking about: ${text}`);
  const call = first.output[2];
  // The reasoning item as the stream gave it (no encrypted_content: read
  // from the item store by its id) and the call. (The stream helper's
  // items carry the SDK's own parsed fields, which OpenAI's API refuses
  // in input too.)
  const { parsed_arguments: _, ...bareCall } = call;
  const second = await client.responses.create({ model, tools, reasoning, input: [...input, first.output[0], bareCall, { type: 'function_call_output', call_id: call.call_id, output: '7C' }] });
  assert.equal(second.output_text, 'tool said: 7C');
});

await check('tool loop with reasoning.effort by previous_response_id', async () => {
  const text = 'weather in Rome [redacted-thinking]';
  const first = await client.responses.create({ model, tools, reasoning, input: text });
  assert.deepEqual(first.output.map((o) => o.type), ['reasoning', 'message', 'function_call']);
  const call = first.output[2];
  const second = await client.responses.create({ model, tools, reasoning, previous_response_id: first.id, input: [{ type: 'function_call_output', call_id: call.call_id, output: '25C' }] });
  assert.equal(second.output_text, 'tool said: 25C');
  assert.equal(second.previous_response_id, first.id);
});

// The same items sent to an OpenAI-wire alias (a conversation moved
// between aliases): accepted, and the reasoning does not reach OpenAI's
// chat completions (test/gateway_responses_thinking_test.go checks the
// request test/openaistub received).
await check('reasoning items to an OpenAI alias are not sent upstream', async () => {
  const text = 'weather in Lima';
  const opts = { model, tools, reasoning, store: false, include: ['reasoning.encrypted_content'] };
  const first = await client.responses.create({ ...opts, input: [{ role: 'user', content: text }] });
  const call = first.output[2];
  const res = await client.responses.create({
    model: process.env.VIGIL_OPENAI_ALIAS ?? 'chat', tools, store: false,
    input: [{ role: 'user', content: text }, ...first.output, { type: 'function_call_output', call_id: call.call_id, output: '20C' }],
  });
  assert.equal(res.output_text, 'tool get_weather returned: 20C');
  assert.deepEqual(res.output.map((o) => o.type), ['message']);
});

done();
