// Tool calling through Vigil's gateway with the official OpenAI Node SDK,
// against the openai plugin and test/openaistub (which calls the forced or
// first tool with {"query": <user text>} and answers a tool result with
// "tool NAME returned: RESULT"). test/gateway_tools_openai_test.go runs
// this (node sdk_tools_openai.mjs) with the gateway's URL and a token in
// the environment. Any failed check throws, and node exits non-zero.
import assert from 'node:assert/strict';
import { BadRequestError } from 'openai';
import { client, exchanges, check, done } from './harness.mjs';

const model = process.env.VIGIL_TOOLS_ALIAS ?? 'default';

const weather = {
  type: 'function',
  function: {
    name: 'get_weather',
    description: 'The current weather of a city',
    parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'], additionalProperties: false },
    strict: true,
  },
};
const time = {
  type: 'function',
  function: { name: 'get_time', description: 'The time in a time zone', parameters: { type: 'object', properties: { query: { type: 'string' } } } },
};

await check('tool round trip', async () => {
  const messages = [{ role: 'user', content: 'weather in Paris' }];
  const first = await client.chat.completions.create({ model, messages, tools: [weather, time] });
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.role, 'assistant');
  assert.equal(choice.message.content, null);
  assert.equal(choice.message.tool_calls.length, 1);
  const call = choice.message.tool_calls[0];
  assert.match(call.id, /^call_/);
  assert.equal(call.type, 'function');
  assert.equal(call.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { query: 'weather in Paris' });
  // The usual loop: send the assistant message back as it came, then the
  // tool's result.
  messages.push(choice.message, { role: 'tool', tool_call_id: call.id, content: '18 C, cloudy' });
  const second = await client.chat.completions.create({ model, messages, tools: [weather, time] });
  assert.equal(second.choices[0].finish_reason, 'stop');
  assert.equal(second.choices[0].message.content, 'tool get_weather returned: 18 C, cloudy');
  assert.equal(second.choices[0].message.tool_calls, undefined);
  const sent = exchanges.at(-1).body.messages;
  assert.equal(sent[1].tool_calls[0].id, call.id);
  assert.equal(sent[2].tool_call_id, call.id);
});

await check('streamed tool calls with the streaming helper', async () => {
  const argumentDeltas = [];
  const done = [];
  const stream = client.chat.completions
    .stream({
      model,
      messages: [{ role: 'user', content: 'weather and time in Oslo' }],
      tools: [weather, time],
      tool_choice: 'required',
      stream_options: { include_usage: true },
    })
    .on('tool_calls.function.arguments.delta', (e) => argumentDeltas.push(e))
    .on('tool_calls.function.arguments.done', (e) => done.push(e));
  const final = await stream.finalChatCompletion();
  const choice = final.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, null);
  // tool_choice required with parallel calls allowed: the stub calls both.
  assert.deepEqual(choice.message.tool_calls.map((c) => c.function.name), ['get_weather', 'get_time']);
  for (const c of choice.message.tool_calls) {
    assert.match(c.id, /^call_/);
    assert.equal(c.type, 'function');
    assert.deepEqual(JSON.parse(c.function.arguments), { query: 'weather and time in Oslo' });
  }
  assert.notEqual(choice.message.tool_calls[0].id, choice.message.tool_calls[1].id);
  // The arguments came in several fragments per call, and the strict
  // tool's were parsed by the SDK when its call was done.
  assert.ok(argumentDeltas.filter((e) => e.index === 0).length >= 3, `${argumentDeltas.length} argument deltas`);
  assert.equal(done.length, 2);
  assert.deepEqual(done[0].parsed_arguments, { query: 'weather and time in Oslo' });
  assert.ok(final.usage && final.usage.completion_tokens > 0, `usage ${JSON.stringify(final.usage)}`);
});

await check('tool_choice forces a function', async () => {
  const res = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'what time is it in Tokyo' }],
    tools: [weather, time],
    tool_choice: { type: 'function', function: { name: 'get_time' } },
    parallel_tool_calls: false,
  });
  const calls = res.choices[0].message.tool_calls;
  assert.equal(calls.length, 1);
  assert.equal(calls[0].function.name, 'get_time');
  assert.deepEqual(JSON.parse(calls[0].function.arguments), { query: 'what time is it in Tokyo' });
});

await check('tool_choice none answers with text', async () => {
  const res = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'just talk' }], tools: [weather], tool_choice: 'none',
  });
  assert.equal(res.choices[0].message.content, 'echo: just talk');
  assert.equal(res.choices[0].finish_reason, 'stop');
  assert.equal(res.choices[0].message.tool_calls, undefined);
});

await check('cached tool call re-streamed', async () => {
  const body = { model, messages: [{ role: 'user', content: 'cache this weather' }], tools: [weather], temperature: 0 };
  const first = await client.chat.completions.create(body);
  assert.equal(exchanges.at(-1).cache, 'miss');
  // The cache write is asynchronous: poll until the answer is there.
  for (let i = 0; i < 100; i++) {
    await client.chat.completions.create(body);
    if (exchanges.at(-1).cache === 'hit') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(exchanges.at(-1).cache, 'hit');
  const final = await client.chat.completions.stream(body).finalChatCompletion();
  assert.equal(exchanges.at(-1).cache, 'hit');
  assert.equal(final.choices[0].finish_reason, 'tool_calls');
  // (The helper adds parsed_arguments for a strict tool: compare the rest.)
  const plain = (calls) => calls.map((c) => ({ id: c.id, type: c.type, name: c.function.name, arguments: c.function.arguments }));
  assert.deepEqual(plain(final.choices[0].message.tool_calls), plain(first.choices[0].message.tool_calls));
  assert.deepEqual(final.choices[0].message.tool_calls[0].function.parsed_arguments, { query: 'cache this weather' });
});

await check('strict tool arguments checked and repaired', async () => {
  // The stub calls get_weather with {"query": <a number>}, which its strict
  // schema refuses. The gateway asks once more, answering the call with
  // the validation error (a conversation the stub, like OpenAI, accepts
  // only if every call is answered); the stub then quotes that result.
  const res = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'weather [invalid-arguments]' }], tools: [weather] });
  assert.equal(exchanges.at(-1).attempts, '2');
  assert.equal(res.choices[0].finish_reason, 'stop');
  assert.match(res.choices[0].message.content, /^tool get_weather returned: Error, not run: the arguments of get_weather do not match the schema: .*query/s);
});

await check('400 for a bad tool name', async () => {
  await assert.rejects(
    client.chat.completions.create({
      model, messages: [{ role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'get weather' } }],
    }),
    (e) => e instanceof BadRequestError && e.status === 400 && e.param === 'tools[0].function.name' && /get weather/.test(e.message),
  );
});

await check('400 for the deprecated functions parameter', async () => {
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], functions: [{ name: 'f', parameters: {} }] }),
    (e) => e instanceof BadRequestError && e.param === 'functions' && /tools/.test(e.message),
  );
});

done();
