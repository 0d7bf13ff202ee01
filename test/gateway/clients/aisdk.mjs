// The Vercel AI SDK (ai + @ai-sdk/openai) as a client of Vigil's gateway,
// against the openai plugin and test/openaistub (which echoes "echo:
// <last user text>", answers a JSON response format with {"answer":
// <last user text>}, calls the first tool with {"query": <user text>} and
// quotes tool results as "tool NAME returned: RESULT"), and once against
// the anthropic plugin and test/anthropicstub (VIGIL_ANTHROPIC_ALIAS).
// test/gateway_clients_test.go runs it (node aisdk.mjs) with the
// gateway's URL and a token in the environment. Any failed check throws,
// and node exits non-zero.
import assert from 'node:assert/strict';
import { createOpenAI } from '@ai-sdk/openai';
import { APICallError, Output, embed, embedMany, generateText, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';
import { apiKey, baseURL, check, done, exchanges, last, recordingFetch } from './harness.mjs';

const openai = createOpenAI({ baseURL, apiKey, fetch: recordingFetch });
const model = 'default';
const expectVector = JSON.parse(process.env.VIGIL_EXPECT_EMBEDDING);
const anthropicAlias = process.env.VIGIL_ANTHROPIC_ALIAS;

// The models the checks go through: chat completions and the Responses
// API, each with the path the SDK posts to. openai(alias), the SDK's
// default, is the Responses API in this major version.
const apis = [
  { name: 'chat', make: (alias) => openai.chat(alias), path: '/chat/completions' },
  { name: 'responses', make: (alias) => openai.responses(alias), path: '/responses' },
  { name: 'default', make: (alias) => openai(alias), path: '/responses' },
];

const sameVector = (got, want) => {
  assert.equal(got.length, want.length);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `value ${i}: ${v}, want ${want[i]}`));
};

for (const api of apis) {
  await check(`${api.name}: generateText`, async () => {
    const n = exchanges.length;
    const res = await generateText({ model: api.make(model), prompt: 'hello ai sdk', maxRetries: 0 });
    assert.equal(res.text, 'echo: hello ai sdk');
    assert.equal(res.finishReason, 'stop');
    assert.equal(res.usage.inputTokens, 3);
    assert.equal(res.usage.outputTokens, 4);
    assert.equal(res.usage.totalTokens, 7);
    assert.equal(exchanges.length, n + 1);
    assert.ok(exchanges.at(-1).url.endsWith(api.path), exchanges.at(-1).url);
    assert.equal(res.response.headers['x-vigil-provider'], 'openai-main');
    // The model that answered: the alias's upstream model, as on chat.
    assert.equal(res.response.modelId, 'gpt-test');
  });

  await check(`${api.name}: streamText`, async () => {
    const result = streamText({ model: api.make(model), prompt: 'stream me please', maxRetries: 0, onError: ({ error }) => { throw error; } });
    const deltas = [];
    for await (const d of result.textStream) deltas.push(d);
    assert.ok(deltas.length >= 2, `${deltas.length} text deltas`);
    assert.equal(deltas.join(''), 'echo: stream me please');
    assert.equal(await result.finishReason, 'stop');
    const usage = await result.usage;
    assert.equal(usage.inputTokens, 3);
    assert.equal(usage.outputTokens, 4);
    assert.equal(usage.totalTokens, 7);
    const sent = exchanges.at(-1);
    assert.ok(sent.url.endsWith(api.path), sent.url);
    assert.equal(sent.body.stream, true);
    assert.equal(sent.headers.get('content-type'), 'text/event-stream');
  });

  await check(`${api.name}: structured output (Output.object, zod)`, async () => {
    const schema = z.object({ answer: z.string() });
    const res = await generateText({ model: api.make(model), prompt: 'tell me the answer', output: Output.object({ schema }), maxRetries: 0 });
    assert.deepEqual(res.output, { answer: 'tell me the answer' });
    const sent = exchanges.at(-1).body;
    // What the SDK sent: a strict json_schema response format (chat) or
    // text.format (Responses).
    const format = api.path === '/chat/completions' ? sent.response_format : sent.text.format;
    assert.equal(format.type, 'json_schema');
    const js = api.path === '/chat/completions' ? format.json_schema : format;
    assert.equal(js.strict, true);
    assert.deepEqual(js.schema.required, ['answer']);
  });

  await check(`${api.name}: streamed structured output`, async () => {
    const schema = z.object({ answer: z.string() });
    const result = streamText({ model: api.make(model), prompt: 'stream the answer', output: Output.object({ schema }), maxRetries: 0, onError: ({ error }) => { throw error; } });
    const partials = [];
    for await (const p of result.partialOutputStream) partials.push(p);
    assert.ok(partials.length >= 1);
    assert.deepEqual(await result.output, { answer: 'stream the answer' });
  });

  await check(`${api.name}: tool calling, multi-step`, async () => {
    const calls = [];
    const weather = tool({
      description: 'The current weather of a city',
      inputSchema: z.object({ query: z.string() }),
      execute: async ({ query }) => {
        calls.push(query);
        return '18 C, cloudy';
      },
    });
    const n = exchanges.length;
    const res = await generateText({ model: api.make(model), prompt: 'weather in Paris', tools: { get_weather: weather }, stopWhen: stepCountIs(3), maxRetries: 0 });
    assert.deepEqual(calls, ['weather in Paris']);
    assert.equal(res.steps.length, 2);
    assert.equal(res.steps[0].finishReason, 'tool-calls');
    assert.equal(res.steps[0].toolCalls[0].toolName, 'get_weather');
    assert.deepEqual(res.steps[0].toolCalls[0].input, { query: 'weather in Paris' });
    assert.equal(res.finishReason, 'stop');
    assert.equal(res.text, 'tool get_weather returned: 18 C, cloudy');
    assert.equal(exchanges.length, n + 2);
    const first = exchanges[n].body;
    const second = exchanges[n + 1].body;
    if (api.path === '/chat/completions') {
      assert.equal(first.tools[0].type, 'function');
      assert.equal(first.tools[0].function.name, 'get_weather');
      assert.equal(second.messages.at(-1).role, 'tool');
    } else {
      assert.equal(first.tools[0].type, 'function');
      assert.equal(first.tools[0].name, 'get_weather');
      assert.equal(second.input.at(-1).type, 'function_call_output');
    }
  });

  await check(`${api.name}: streamed tool calling, multi-step`, async () => {
    const calls = [];
    const weather = tool({
      description: 'The current weather of a city',
      inputSchema: z.object({ query: z.string() }),
      execute: async ({ query }) => {
        calls.push(query);
        return { celsius: 18 };
      },
    });
    const result = streamText({ model: api.make(model), prompt: 'weather in Oslo', tools: { get_weather: weather }, stopWhen: stepCountIs(3), maxRetries: 0, onError: ({ error }) => { throw error; } });
    let text = '';
    for await (const d of result.textStream) text += d;
    assert.deepEqual(calls, ['weather in Oslo']);
    assert.equal(text, 'tool get_weather returned: {"celsius":18}');
    assert.equal((await result.steps).length, 2);
    assert.equal(await result.finishReason, 'stop');
  });

  await check(`${api.name}: unknown model is an APICallError with status 404`, async () => {
    await assert.rejects(generateText({ model: api.make('no-such-model'), prompt: 'hi', maxRetries: 0 }), (err) => {
      assert.ok(APICallError.isInstance(err), `${err?.name}: ${err?.message}`);
      assert.equal(err.statusCode, 404);
      assert.equal(err.isRetryable, false);
      assert.match(err.message, /no-such-model/);
      return true;
    });
  });
}

// Logprobs: providerOptions.openai.logprobs is logprobs + top_logprobs on
// chat completions, and include ["message.output_text.logprobs"] +
// top_logprobs on the Responses API; the SDK reports them in
// providerMetadata.openai.logprobs.
for (const api of apis.slice(0, 2)) {
  await check(`${api.name}: logprobs (providerOptions.openai.logprobs)`, async () => {
    const res = await generateText({ model: api.make(model), prompt: 'hi there', providerOptions: { openai: { logprobs: 2 } }, maxRetries: 0 });
    assert.equal(res.text, 'echo: hi there');
    const sent = exchanges.at(-1).body;
    if (api.path === '/responses') assert.deepEqual(sent.include, ['message.output_text.logprobs']);
    assert.equal(sent.top_logprobs, 2);
    const lps = res.providerMetadata.openai.logprobs.flat();
    assert.deepEqual(lps.map((l) => l.token).join(''), 'echo: hi there');
    for (const l of lps) {
      assert.equal(typeof l.logprob, 'number');
      assert.equal(l.top_logprobs.length, 2);
    }
    const result = streamText({ model: api.make(model), prompt: 'hi there', providerOptions: { openai: { logprobs: 1 } }, maxRetries: 0, onError: ({ error }) => { throw error; } });
    let text = '';
    for await (const d of result.textStream) text += d;
    assert.equal(text, 'echo: hi there');
    const streamed = (await result.providerMetadata).openai.logprobs.flat();
    assert.deepEqual(streamed.map((l) => l.token).join(''), 'echo: hi there');
  });
}

// Keeping the conversation on the client (store: false), the SDK asks a
// reasoning model's answers for their encrypted reasoning (include
// ["reasoning.encrypted_content"], as OpenAI's other stateless clients
// do); the gateway's answers have none, and the request is served.
await check('responses: store false with include reasoning.encrypted_content', async () => {
  const res = await generateText({
    model: openai.responses(model), prompt: 'stateless', maxRetries: 0,
    providerOptions: { openai: { store: false, include: ['reasoning.encrypted_content'] } },
  });
  assert.equal(res.text, 'echo: stateless');
  assert.equal(exchanges.at(-1).body.store, false);
  assert.deepEqual(exchanges.at(-1).body.include, ['reasoning.encrypted_content']);
});

// A reasoning effort on the Responses API: the SDK asks for a detailed
// reasoning summary with it (reasoning.summary); the gateway takes it and
// none comes back. forceReasoning, since the SDK knows reasoning models by
// their OpenAI names and the alias is not one.
await check('responses: reasoning effort with its default summary', async () => {
  const res = await generateText({
    model: openai.responses('reasoner'), prompt: 'think', maxRetries: 0,
    providerOptions: { openai: { reasoningEffort: 'low', forceReasoning: true } },
  });
  assert.equal(res.text, 'echo: think');
  assert.deepEqual(exchanges.at(-1).body.reasoning, { effort: 'low', summary: 'detailed' });
  assert.equal(res.reasoningText, undefined);
});

// A conversation kept by the application (the usual chat loop: the
// answer's response.messages appended to the next call's messages). With
// the SDK's default store (true), the Responses model refers to its earlier
// answers by id (item_reference, msg_ ids), which the gateway resolves from
// the output items it keeps for the token; with store: false the SDK sends
// the items themselves. Chat completions need neither.
await check('responses: a conversation kept by the client (store: false, and the default store)', async () => {
  const turn = async (make, providerOptions, tag = '') => {
    const messages = [{ role: 'user', content: `first question${tag}` }];
    const first = await generateText({ model: make(model), messages, maxRetries: 0, providerOptions });
    messages.push(...first.response.messages, { role: 'user', content: `second question${tag}` });
    return generateText({ model: make(model), messages, maxRetries: 0, providerOptions });
  };
  const second = await turn((a) => openai.responses(a), { openai: { store: false } });
  assert.equal(second.text, 'echo: second question');
  assert.equal(exchanges.at(-1).body.store, false);
  assert.deepEqual(exchanges.at(-1).body.input[1], { role: 'assistant', content: 'echo: first question' });
  assert.equal((await turn((a) => openai.chat(a))).text, 'echo: second question');
  // The provider's default model, no store option: by reference.
  const stored = await turn((a) => openai(a), undefined, ' (stored)');
  assert.equal(stored.text, 'echo: second question (stored)');
  const ref = exchanges.at(-1).body.input[1];
  assert.equal(ref.type, 'item_reference');
  assert.match(ref.id, /^msg_/);
  assert.equal(exchanges.at(-1).body.store, undefined);
  // An unknown reference: OpenAI's 404 for an item it does not have,
  // naming the field and what to do.
  await assert.rejects(
    generateText({ model: openai('default'), maxRetries: 0, messages: [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: [{ type: 'text', text: 'gone', providerOptions: { openai: { itemId: 'msg_unknown' } } }] },
      { role: 'user', content: 'again' },
    ] }),
    (err) => {
      assert.ok(APICallError.isInstance(err), String(err));
      assert.equal(err.statusCode, 404);
      assert.match(err.message, /Item with id "msg_unknown" not found.*store: false/);
      assert.equal(JSON.parse(err.responseBody).error.param, 'input[1].id');
      return true;
    });
});

// OpenAI's previous_response_id through the AI SDK
// (providerOptions.openai.previousResponseId): each call sends only its
// new message and names the response before it (its id in
// providerMetadata.openai.responseId); the gateway rebuilds the rest
// (test/gateway_clients_test.go checks what reached the upstream).
await check('default: previousResponseId chains three turns, the last streamed', async () => {
  const first = await generateText({ model: openai(model), system: 'aisdk chain rules', prompt: 'aisdk chain one', maxRetries: 0 });
  const id1 = first.providerMetadata.openai.responseId;
  assert.match(id1, /^resp_/);
  // The SDK sends the system prompt as an input item, not instructions:
  // it is part of the kept turn.
  assert.equal(exchanges.at(-1).body.instructions, undefined);
  assert.equal(exchanges.at(-1).body.input[0].role, 'system');
  const second = await generateText({ model: openai(model), prompt: 'aisdk chain two', maxRetries: 0, providerOptions: { openai: { previousResponseId: id1 } } });
  assert.equal(second.text, 'echo: aisdk chain two');
  assert.equal(exchanges.at(-1).body.previous_response_id, id1);
  assert.deepEqual(exchanges.at(-1).body.input.map((i) => i.role), ['user']);
  const third = streamText({
    model: openai(model), prompt: 'aisdk chain three', maxRetries: 0,
    providerOptions: { openai: { previousResponseId: second.providerMetadata.openai.responseId } },
    onError: ({ error }) => { throw error; },
  });
  assert.equal(await third.text, 'echo: aisdk chain three');
  // One the gateway does not keep: OpenAI's code and param.
  await assert.rejects(
    generateText({ model: openai(model), prompt: 'x', maxRetries: 0, providerOptions: { openai: { previousResponseId: 'resp_unknown' } } }),
    (err) => {
      assert.ok(APICallError.isInstance(err), String(err));
      assert.equal(err.statusCode, 404);
      const body = JSON.parse(err.responseBody).error;
      assert.equal(body.code, 'previous_response_not_found');
      assert.equal(body.param, 'previous_response_id');
      return true;
    });
});

// The default model in a tool loop whose answers have text before their
// calls (the stub's [preamble]): the next step refers to the text by id
// and sends the call and its output by value; then the conversation goes
// on with a further turn that refers to both answers. Whole and streamed.
for (const streamed of [false, true]) {
  const name = streamed ? 'streamed' : 'whole';
  await check(`default: ${name} tool loop with text and a call, then another turn (store default)`, async () => {
    const calls = [];
    const weather = tool({
      description: 'The current weather of a city',
      inputSchema: z.object({ query: z.string() }),
      execute: async ({ query }) => {
        calls.push(query);
        return '7 C, rain';
      },
    });
    const prompt = `weather in Bergen, ${name} [preamble]`;
    const messages = [{ role: 'user', content: prompt }];
    const n = exchanges.length;
    const opts = { model: openai(model), messages, tools: { get_weather: weather }, stopWhen: stepCountIs(3), maxRetries: 0 };
    let res;
    if (streamed) {
      res = streamText({ ...opts, onError: ({ error }) => { throw error; } });
      let text = '';
      for await (const d of res.textStream) text += d;
      assert.equal(text, 'Let me look that up.tool get_weather returned: 7 C, rain');
      res = { steps: await res.steps, text: await res.text };
    } else {
      res = await generateText(opts);
    }
    assert.deepEqual(calls, [prompt]);
    assert.equal(res.steps.length, 2);
    assert.equal(res.steps[0].text, 'Let me look that up.');
    assert.equal(res.steps[0].toolCalls[0].toolName, 'get_weather');
    assert.equal(res.text, 'tool get_weather returned: 7 C, rain');
    assert.equal(exchanges.length, n + 2);
    const step2 = exchanges[n + 1].body.input;
    assert.deepEqual(step2.map((i) => i.type ?? i.role), ['user', 'item_reference', 'function_call', 'function_call_output']);
    assert.match(step2[1].id, /^msg_/);
    // Another turn, referring to both answers: every step's messages
    // (in ai 7, response.messages holds the last step's only).
    messages.push(...res.steps.flatMap((s) => s.response.messages), { role: 'user', content: `and tomorrow, ${name}?` });
    const next = await generateText({ model: openai(model), messages, maxRetries: 0 });
    assert.equal(next.text, `echo: and tomorrow, ${name}?`);
    const turn2 = exchanges.at(-1).body.input;
    assert.deepEqual(turn2.map((i) => i.type ?? i.role), ['user', 'item_reference', 'function_call', 'function_call_output', 'item_reference', 'user']);
  });
}

// An upstream that fails mid-stream (alias cut; the Go test queues the
// fault): the SDK reports an error and finishReason "error", never a
// shorter answer that looks complete.
for (const api of apis.slice(0, 2)) {
  await check(`${api.name}: a stream cut mid-way is an error`, async () => {
    const errors = [];
    const result = streamText({ model: api.make('cut'), prompt: 'one two three four five six', maxRetries: 0, onError: ({ error }) => errors.push(error) });
    let text = '';
    for await (const d of result.textStream) text += d;
    assert.ok('echo: one two three four five six'.startsWith(text) && text.length < 30, text);
    assert.equal(await result.finishReason, 'error');
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /mid-stream.*incomplete/);
  });
}

await check('anthropic provider behind the gateway: generateText, streamText', async () => {
  const res = await generateText({ model: openai.chat(anthropicAlias), prompt: 'hello claude', maxRetries: 0 });
  assert.equal(res.text, 'echo: hello claude');
  assert.equal(res.finishReason, 'stop');
  assert.equal(res.response.headers['x-vigil-provider'], 'anthropic-main');
  const result = streamText({ model: openai(anthropicAlias), prompt: 'stream claude', maxRetries: 0, onError: ({ error }) => { throw error; } });
  let text = '';
  for await (const d of result.textStream) text += d;
  assert.equal(text, 'echo: stream claude');
  assert.equal(await result.finishReason, 'stop');
  assert.ok((await result.usage).outputTokens > 0);
});

// A tool loop with a reasoning effort on an Anthropic alias, through the
// provider's default model (the Responses API): the answers' reasoning
// comes back as reasoning items (the thinking text as reasoningText),
// and the SDK sends them back with the next step, by item_reference with
// its default store, by value with their encrypted_content with store:
// false (it then asks for include ["reasoning.encrypted_content"]
// itself); the stub refuses a continuation without its thinking blocks,
// and test/gateway_clients_test.go checks the blocks it received.
for (const store of [undefined, false]) {
  await check(`default: tool loop with reasoningEffort on an Anthropic alias (store ${store ?? 'default'})`, async () => {
    const weather = tool({
      description: 'The weather of a city',
      inputSchema: z.object({ city: z.string() }),
      execute: async () => '9C',
    });
    const prompt = `aisdk thinking weather, store ${store ?? 'default'}`;
    const n = exchanges.length;
    const res = await generateText({
      model: openai(anthropicAlias), prompt, tools: { get_weather: weather }, stopWhen: stepCountIs(3), maxRetries: 0,
      providerOptions: { openai: { reasoningEffort: 'low', forceReasoning: true, ...(store === false ? { store } : {}) } },
    });
    assert.equal(res.steps.length, 2);
    assert.equal(res.steps[0].reasoningText, `Thinking about: ${prompt}`);
    assert.equal(res.steps[0].toolCalls[0].toolName, 'get_weather');
    assert.equal(res.text, 'tool said: 9C');
    assert.equal(exchanges.length, n + 2);
    const step2 = exchanges[n + 1].body;
    assert.deepEqual(step2.reasoning, { effort: 'low', summary: 'detailed' });
    if (store === false) {
      assert.deepEqual(step2.include, ['reasoning.encrypted_content']);
      assert.deepEqual(step2.input.map((i) => i.type ?? i.role), ['user', 'reasoning', 'assistant', 'function_call', 'function_call_output']);
      assert.ok(step2.input[1].encrypted_content.length > 20);
    } else {
      assert.deepEqual(step2.input.map((i) => i.type ?? i.role), ['user', 'item_reference', 'item_reference', 'function_call', 'function_call_output']);
      assert.match(step2.input[1].id, /^rs_/);
    }
  });
}

await check('embed and embedMany', async () => {
  const one = await embed({ model: openai.embedding('embed'), value: 'alpha beta', maxRetries: 0 });
  sameVector(one.embedding, expectVector);
  assert.ok(one.usage.tokens > 0);
  const many = await embedMany({ model: openai.embedding('embed'), values: ['alpha beta', 'gamma'], maxRetries: 0 });
  assert.equal(many.embeddings.length, 2);
  sameVector(many.embeddings[0], expectVector);
  assert.equal(last('/embeddings').body.encoding_format, 'float');
});

done();
