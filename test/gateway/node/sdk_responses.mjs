// OpenAI's Responses API through Vigil's gateway with the official OpenAI
// Node SDK (client.responses.*), against the openai plugin and
// test/openaistub (which echoes "echo: <last user text>", calls the first
// tool with {"query": <user text>} and quotes tool results as "tool NAME
// returned: RESULT"), and once against the anthropic plugin and
// test/anthropicstub. test/gateway_responses_test.go runs this (node
// sdk_responses.mjs) with the gateway's URL and a token in the
// environment, after queueing a mid-stream cut. Any failed check throws,
// and node exits non-zero.
import assert from 'node:assert/strict';
import { APIError, BadRequestError, NotFoundError } from 'openai';
import { makeParseableTextFormat } from 'openai/lib/parser';
import { client, exchanges, check, done } from './harness.mjs';

const model = 'default';

await check('responses.create, plain', async () => {
  const { data, response } = await client.responses.create({ model, input: 'hello responses' }).withResponse();
  assert.equal(data.object, 'response');
  assert.match(data.id, /^resp_/);
  assert.equal(data.status, 'completed');
  assert.equal(data.output_text, 'echo: hello responses');
  assert.equal(data.output.length, 1);
  assert.equal(data.output[0].type, 'message');
  assert.equal(data.output[0].role, 'assistant');
  assert.match(data.output[0].id, /^msg_/);
  assert.deepEqual(data.output[0].content, [{ type: 'output_text', text: 'echo: hello responses', annotations: [], logprobs: [] }]);
  // store left out is OpenAI's default, true: Vigil keeps the output
  // items and the turn (for item_reference and previous_response_id, not
  // the response object) and says so.
  assert.equal(data.store, true);
  assert.equal(data.error, null);
  assert.equal(data.usage.input_tokens, 2);
  assert.equal(data.usage.output_tokens, 3);
  assert.equal(data.usage.total_tokens, 5);
  assert.equal(data.usage.input_tokens_details.cached_tokens, 0);
  assert.equal(data.usage.output_tokens_details.reasoning_tokens, 0);
  assert.equal(response.headers.get('x-vigil-provider'), 'openai-main');
  assert.equal(response.headers.get('x-vigil-attempts'), '1');
  assert.equal(response.headers.get('x-vigil-cache'), 'bypass');
});

await check('instructions, store: true, metadata', async () => {
  const res = await client.responses.create({
    model, instructions: 'be brief', input: 'hi there', store: true, metadata: { app: 'sdk-test' }, temperature: 0, max_output_tokens: 100,
  });
  assert.equal(res.output_text, 'echo: hi there');
  assert.equal(res.instructions, 'be brief');
  assert.equal(res.store, true);
  assert.deepEqual(res.metadata, { app: 'sdk-test' });
  assert.equal(res.temperature, 0);
  assert.equal(res.max_output_tokens, 100);
  // Deterministic (temperature 0): the same request again comes from the
  // response cache (written asynchronously: poll until it has landed).
  let again;
  for (let i = 0; i < 100; i++) {
    again = await client.responses
      .create({ model, instructions: 'be brief', input: 'hi there', store: true, metadata: { app: 'sdk-test' }, temperature: 0, max_output_tokens: 100 })
      .withResponse();
    if (again.response.headers.get('x-vigil-cache') === 'hit') break;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(again.response.headers.get('x-vigil-cache'), 'hit');
  assert.equal(again.response.headers.get('x-vigil-attempts'), '0');
  assert.equal(again.data.output_text, 'echo: hi there');
  assert.notEqual(again.data.id, res.id);
});

const weather = {
  type: 'function',
  name: 'get_weather',
  description: 'The current weather of a city',
  parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'], additionalProperties: false },
  strict: true,
};
// No strict: strict by default on the Responses API, its schema normalized.
const time = { type: 'function', name: 'get_time', parameters: { type: 'object', properties: { query: { type: 'string' } } } };

const toolRoundTrip = async (alias, expectText) => {
  const input = [{ role: 'user', content: 'weather in Paris' }];
  const first = await client.responses.create({ model: alias, input, tools: [weather, time] });
  const calls = first.output.filter((o) => o.type === 'function_call');
  assert.equal(calls.length, 1, JSON.stringify(first.output));
  const call = calls[0];
  assert.equal(call.name, 'get_weather');
  assert.equal(call.status, 'completed');
  assert.match(call.id, /^fc_/);
  assert.ok(call.call_id.length > 0);
  assert.deepEqual(JSON.parse(call.arguments), { query: 'weather in Paris' });
  assert.deepEqual(first.tools.map((t) => [t.name, t.strict]), [['get_weather', true], ['get_time', true]]);
  // The usual loop: the output items back as they came, then the result.
  input.push(...first.output, { type: 'function_call_output', call_id: call.call_id, output: '18 C, cloudy' });
  const second = await client.responses.create({ model: alias, input, tools: [weather, time] });
  assert.equal(second.status, 'completed');
  assert.equal(second.output_text, expectText);
  assert.equal(second.output.filter((o) => o.type === 'function_call').length, 0);
  const sent = exchanges.at(-1).body.input;
  assert.equal(sent.at(-1).call_id, call.call_id);
  return first;
};

await check('function tools over two turns', async () => {
  const first = await toolRoundTrip(model, 'tool get_weather returned: 18 C, cloudy');
  assert.equal(first.output_text, '');
  assert.equal(first.output.length, 1);
});

await check('text.format json_schema', async () => {
  const res = await client.responses.create({
    model,
    input: 'structured',
    text: {
      format: { type: 'json_schema', name: 'reply', strict: true, schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false } },
    },
  });
  assert.deepEqual(JSON.parse(res.output_text), { answer: 'structured' });
  assert.equal(res.text.format.type, 'json_schema');
  assert.equal(res.text.format.name, 'reply');
});

// A refusal (the stub's, with "[refuse]" in the input) is OpenAI's
// refusal content part, not output_text: responses.parse with a parseable
// text.format (makeParseableTextFormat, what zodTextFormat builds) gives
// output_parsed null and the refusal, whole and streamed.
await check('a refusal: responses.parse and responses.stream', async () => {
  const text = {
    format: makeParseableTextFormat(
      { type: 'json_schema', name: 'reply', strict: true, schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'], additionalProperties: false } },
      (content) => JSON.parse(content),
    ),
  };
  const refusalPart = { type: 'refusal', refusal: "I can't help with that." };
  // A plain answer parses (the format is parseable indeed).
  const ok = await client.responses.parse({ model, input: 'parse me', text });
  assert.deepEqual(ok.output_parsed, { answer: 'parse me' });

  const res = await client.responses.parse({ model, input: 'please [refuse] this', text });
  assert.equal(res.status, 'completed');
  assert.equal(res.output_parsed, null);
  assert.equal(res.output_text, '');
  assert.equal(res.output.length, 1);
  assert.deepEqual(res.output[0].content, [refusalPart]);

  const deltas = [];
  const types = [];
  const final = await client.responses
    .stream({ model, input: 'please [refuse] that', text })
    .on('event', (e) => types.push(e.type))
    .on('response.refusal.delta', (e) => {
      assert.equal(e.content_index, 0);
      deltas.push(e.delta);
    })
    .finalResponse();
  assert.ok(deltas.length > 1, `${deltas.length} refusal deltas`);
  assert.equal(deltas.join(''), refusalPart.refusal);
  assert.ok(!types.includes('response.output_text.delta'), `${types}`);
  for (const t of ['response.content_part.added', 'response.refusal.done', 'response.content_part.done', 'response.output_item.done']) {
    assert.equal(types.filter((x) => x === t).length, 1, `${t} in ${types}`);
  }
  assert.equal(final.output_parsed, null);
  assert.equal(final.output_text, '');
  assert.deepEqual(final.output[0].content, [refusalPart]);
});

await check('responses.stream: deltas and the final response', async () => {
  const deltas = [];
  const types = [];
  const stream = client.responses
    .stream({ model, input: 'stream me please' })
    .on('event', (e) => types.push(e.type))
    .on('response.output_text.delta', (e) => deltas.push(e.delta));
  const final = await stream.finalResponse();
  assert.ok(deltas.length > 1, `${deltas.length} deltas`);
  assert.equal(deltas.join(''), 'echo: stream me please');
  assert.equal(final.output_text, 'echo: stream me please');
  assert.equal(final.status, 'completed');
  assert.ok(final.usage.output_tokens > 0 && final.usage.total_tokens === final.usage.input_tokens + final.usage.output_tokens, JSON.stringify(final.usage));
  assert.equal(types[0], 'response.created');
  assert.equal(types[1], 'response.in_progress');
  assert.equal(types.at(-1), 'response.completed');
  for (const t of ['response.output_item.added', 'response.content_part.added', 'response.output_text.done', 'response.content_part.done', 'response.output_item.done']) {
    assert.equal(types.filter((x) => x === t).length, 1, `${t} in ${types}`);
  }
});

await check('create({stream: true}): events in order, streamed function call', async () => {
  const stream = await client.responses.create({ model, input: [{ role: 'user', content: 'weather in Oslo' }], tools: [weather], stream: true });
  const events = [];
  for await (const e of stream) events.push(e);
  events.forEach((e, i) => assert.equal(e.sequence_number, i));
  const args = events.filter((e) => e.type === 'response.function_call_arguments.delta').map((e) => e.delta);
  assert.ok(args.length > 1, `${args.length} argument deltas`);
  const doneEv = events.find((e) => e.type === 'response.function_call_arguments.done');
  assert.equal(doneEv.arguments, args.join(''));
  assert.deepEqual(JSON.parse(doneEv.arguments), { query: 'weather in Oslo' });
  const last = events.at(-1);
  assert.equal(last.type, 'response.completed');
  assert.equal(last.response.output[0].type, 'function_call');
  assert.equal(last.response.output[0].arguments, doneEv.arguments);
  assert.ok(last.response.usage.input_tokens > 0);
});

await check('mid-stream failure is an error, not a truncation', async () => {
  const stream = await client.responses.create({ model: 'cut', input: 'one two three four five', stream: true });
  const types = [];
  await assert.rejects(
    (async () => {
      for await (const e of stream) types.push(e.type);
    })(),
    (e) => e instanceof APIError && /mid-stream/.test(e.message),
  );
  assert.ok(types.includes('response.output_text.delta') && !types.includes('response.completed'), types.join(' '));
});

// Output items referred to by id across two responses.create calls (what
// clients do when they take the items to be stored): the function call by
// its fc_ id, then the answer's message by its msg_ id. With store: false
// nothing is kept, and a reference gets OpenAI's 404 for an unknown item.
await check('item_reference across two calls; store: false keeps nothing', async () => {
  const first = await client.responses.create({ model, input: [{ role: 'user', content: 'weather in Rome' }], tools: [weather] });
  assert.equal(first.store, true);
  const call = first.output.find((o) => o.type === 'function_call');
  const second = await client.responses.create({
    model, tools: [weather],
    input: [{ role: 'user', content: 'weather in Rome' }, { type: 'item_reference', id: call.id }, { type: 'function_call_output', call_id: call.call_id, output: '25 C' }],
  });
  assert.equal(second.output_text, 'tool get_weather returned: 25 C');
  const third = await client.responses.create({
    model,
    input: [{ role: 'user', content: 'weather in Rome' }, { type: 'item_reference', id: call.id }, { type: 'function_call_output', call_id: call.call_id, output: '25 C' },
      { type: 'item_reference', id: second.output[0].id }, { role: 'user', content: 'thanks' }],
  });
  assert.equal(third.output_text, 'echo: thanks');
  const unstored = await client.responses.create({ model, input: 'not kept', store: false });
  assert.equal(unstored.store, false);
  await assert.rejects(
    client.responses.create({ model, input: [{ role: 'user', content: 'x' }, { type: 'item_reference', id: unstored.output[0].id }] }),
    (e) => e instanceof NotFoundError && e.status === 404 && e.param === 'input[1].id' && /not found.*store: false/.test(e.message),
  );
});

// OpenAI's "Conversation state" pattern: each turn sends only what is new
// with previous_response_id; the gateway rebuilds the conversation from
// the turns it kept (test/gateway_responses_test.go checks what reached
// the upstream: the whole conversation, only the latest instructions).
await check('previous_response_id: three turns, a streamed one, and a tool loop', async () => {
  const r1 = await client.responses.create({ model, instructions: 'chain rules v1', input: 'chain one' });
  assert.equal(r1.output_text, 'echo: chain one');
  assert.equal(r1.previous_response_id, null);
  const r2 = await client.responses.create({ model, instructions: 'chain rules v2', previous_response_id: r1.id, input: 'chain two' });
  assert.equal(r2.output_text, 'echo: chain two');
  assert.equal(r2.previous_response_id, r1.id);
  assert.equal(r2.instructions, 'chain rules v2');
  const r3 = await client.responses.stream({ model, previous_response_id: r2.id, input: [{ role: 'user', content: 'chain three' }] }).finalResponse();
  assert.equal(r3.output_text, 'echo: chain three');
  assert.equal(r3.previous_response_id, r2.id);
  assert.equal(r3.instructions, null);

  // The tool loop as OpenAI documents it: only the function_call_output.
  const t1 = await client.responses.create({ model, input: 'loop weather in Lima', tools: [weather] });
  const call = t1.output.find((o) => o.type === 'function_call');
  assert.ok(call, JSON.stringify(t1.output));
  const t2 = await client.responses.create({
    model, tools: [weather], previous_response_id: t1.id,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: '21 C' }],
  });
  assert.equal(t2.output_text, 'tool get_weather returned: 21 C');
  assert.equal(t2.previous_response_id, t1.id);

  // Unknown, or given with store: false: OpenAI's 404, saying what to do.
  const unstored = await client.responses.create({ model, input: 'chain not kept', store: false });
  for (const id of ['resp_123', unstored.id]) {
    await assert.rejects(
      client.responses.create({ model, input: 'x', previous_response_id: id }),
      (e) => e instanceof NotFoundError && e.status === 404 && e.code === 'previous_response_not_found' && e.param === 'previous_response_id' &&
        /in memory/.test(e.message) && /send the whole conversation in input/.test(e.message),
    );
  }
});

await check('404 unknown model', async () => {
  await assert.rejects(
    client.responses.create({ model: 'no-such-alias', input: 'x' }),
    (e) => e instanceof NotFoundError && e.status === 404 && e.code === 'model_not_found' && e.param === 'model',
  );
});

await check('400 for what the gateway does not serve', async () => {
  await assert.rejects(
    client.responses.create({ model, input: 'x', previous_response_id: 'resp_123', conversation: 'conv_123' }),
    (e) => e instanceof BadRequestError && e.param === 'conversation' && /mutually exclusive/.test(e.message),
  );
  await assert.rejects(
    client.responses.create({ model, input: 'x', tools: [{ type: 'web_search' }] }),
    (e) => e instanceof BadRequestError && e.param === 'tools[0].type',
  );
  await assert.rejects(
    client.responses.create({ model, input: 'x', tools: [{ ...time, name: 'bad name' }] }),
    (e) => e instanceof BadRequestError && e.param === 'tools[0].name',
  );
});

await check('retrieve and delete: 404, nothing is stored', async () => {
  await assert.rejects(
    client.responses.retrieve('resp_123'),
    (e) => e instanceof NotFoundError && e.status === 404 && /does not store responses/.test(e.message),
  );
  await assert.rejects(client.responses.delete('resp_123'), (e) => e instanceof NotFoundError);
});

if (process.env.VIGIL_ANTHROPIC_ALIAS) {
  await check('anthropic behind the Responses API: tools and a stream', async () => {
    const alias = process.env.VIGIL_ANTHROPIC_ALIAS;
    const first = await toolRoundTrip(alias, 'tool said: 18 C, cloudy');
    // Claude writes a line before its call: a message item, then the call.
    assert.deepEqual(first.output.map((o) => o.type), ['message', 'function_call']);
    assert.equal(first.output_text, 'Let me call get_weather.');
    const deltas = [];
    const final = await client.responses
      .stream({ model: alias, instructions: 'be brief', input: 'stream from claude' })
      .on('response.output_text.delta', (e) => deltas.push(e.delta))
      .finalResponse();
    assert.equal(final.output_text, deltas.join(''));
    assert.match(final.output_text, /stream from claude/);
    assert.ok(final.usage.input_tokens > 0 && final.usage.output_tokens > 0, JSON.stringify(final.usage));
  });
}

done();
