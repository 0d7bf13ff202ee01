// LangChain JS (@langchain/openai on @langchain/core) as a client of
// Vigil's gateway, against the openai plugin and test/openaistub (which
// echoes "echo: <last user text>", answers a JSON response format with
// {"answer": <last user text>}, calls the first tool with {"query": <user
// text>} and quotes tool results as "tool NAME returned: RESULT"), and
// once against the anthropic plugin and test/anthropicstub
// (VIGIL_ANTHROPIC_ALIAS). test/gateway_clients_test.go runs it (node
// langchain.mjs) with the gateway's URL and a token in the environment.
// Any failed check throws, and node exits non-zero.
import assert from 'node:assert/strict';
import { AIMessage, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { ChatOpenAI, OpenAIEmbeddings } from '@langchain/openai';
import { z } from 'zod';
import { apiKey, baseURL, check, done, exchanges, last, recordingFetch } from './harness.mjs';

const configuration = { baseURL, fetch: recordingFetch };
const expectVector = JSON.parse(process.env.VIGIL_EXPECT_EMBEDDING);
const anthropicAlias = process.env.VIGIL_ANTHROPIC_ALIAS;

const chat = (fields = {}) => new ChatOpenAI({ model: 'default', apiKey, configuration, maxRetries: 0, ...fields });

const sameVector = (got, want) => {
  assert.equal(got.length, want.length);
  got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `value ${i}: ${v}, want ${want[i]}`));
};

const weather = tool(async ({ query }) => `18 C, cloudy in ${query.split(' ').at(-1)}`, {
  name: 'get_weather',
  description: 'The current weather of a city',
  schema: z.object({ query: z.string() }),
});

// The two APIs ChatOpenAI speaks: chat completions (its default) and the
// Responses API (useResponsesApi: true).
for (const [api, fields, path] of [['chat', {}, '/chat/completions'], ['responses', { useResponsesApi: true }, '/responses']]) {
  await check(`${api}: invoke`, async () => {
    const msg = await chat(fields).invoke([new SystemMessage('be brief'), new HumanMessage('hello langchain')]);
    assert.equal(msg.text, 'echo: hello langchain');
    // The stub counts words: "be brief" and "hello langchain".
    assert.equal(msg.usage_metadata.input_tokens, 4);
    assert.equal(msg.usage_metadata.output_tokens, 3);
    assert.equal(msg.usage_metadata.total_tokens, msg.usage_metadata.input_tokens + 3);
    assert.ok(last(path), `nothing posted to ${path}`);
    assert.equal(exchanges.at(-1).status, 200);
  });

  await check(`${api}: stream`, async () => {
    const chunks = [];
    for await (const c of await chat({ ...fields, streamUsage: true }).stream('stream me please')) chunks.push(c);
    assert.ok(chunks.length >= 3, `${chunks.length} chunks`);
    const text = chunks.map((c) => c.text).join('');
    assert.equal(text, 'echo: stream me please');
    const usage = chunks.find((c) => c.usage_metadata?.output_tokens > 0)?.usage_metadata;
    assert.ok(usage, 'no usage in the stream');
    assert.equal(usage.output_tokens, 4);
    assert.equal(exchanges.at(-1).body.stream, true);
    assert.ok(exchanges.at(-1).url.endsWith(path));
  });

  await check(`${api}: withStructuredOutput (default method: json_schema)`, async () => {
    const schema = z.object({ answer: z.string().describe('the answer') });
    const out = await chat(fields).withStructuredOutput(schema).invoke('tell me the answer');
    assert.deepEqual(out, { answer: 'tell me the answer' });
    const sent = exchanges.at(-1).body;
    const format = api === 'chat' ? sent.response_format : sent.text.format;
    assert.equal(format.type, 'json_schema');
    assert.deepEqual((api === 'chat' ? format.json_schema : format).schema.required, ['answer']);
  });

  await check(`${api}: withStructuredOutput, functionCalling`, async () => {
    const schema = z.object({ query: z.string() });
    const out = await chat(fields).withStructuredOutput(schema, { method: 'functionCalling', name: 'extract' }).invoke('extract this');
    assert.deepEqual(out, { query: 'extract this' });
    const sent = exchanges.at(-1).body;
    assert.equal(sent.tools.length, 1);
    assert.equal(api === 'chat' ? sent.tools[0].function.name : sent.tools[0].name, 'extract');
    assert.ok(sent.tool_choice);
  });

  await check(`${api}: withStructuredOutput, jsonMode`, async () => {
    const schema = z.object({ answer: z.string() });
    const out = await chat(fields).withStructuredOutput(schema, { method: 'jsonMode' }).invoke('answer in JSON');
    assert.deepEqual(out, { answer: 'answer in JSON' });
  });

  await check(`${api}: bindTools and a tool round trip`, async () => {
    const model = chat(fields).bindTools([weather]);
    const messages = [new HumanMessage('weather in Paris')];
    const ai = await model.invoke(messages);
    assert.equal(ai.tool_calls.length, 1);
    assert.equal(ai.tool_calls[0].name, 'get_weather');
    assert.deepEqual(ai.tool_calls[0].args, { query: 'weather in Paris' });
    messages.push(ai, await weather.invoke(ai.tool_calls[0]));
    assert.ok(messages.at(-1) instanceof ToolMessage);
    const answer = await model.invoke(messages);
    assert.equal(answer.tool_calls.length, 0);
    assert.equal(answer.text, 'tool get_weather returned: 18 C, cloudy in Paris');
  });

  await check(`${api}: streamed tool call`, async () => {
    let whole;
    for await (const c of await chat(fields).bindTools([weather]).stream('weather in Oslo')) whole = whole ? whole.concat(c) : c;
    assert.equal(whole.tool_calls.length, 1);
    assert.equal(whole.tool_calls[0].name, 'get_weather');
    assert.deepEqual(whole.tool_calls[0].args, { query: 'weather in Oslo' });
  });

  await check(`${api}: a stream cut mid-way throws`, async () => {
    let text = '';
    await assert.rejects(async () => {
      for await (const c of await chat({ ...fields, model: 'cut' }).stream('one two three four five six')) text += c.text;
    }, /mid-stream.*incomplete/);
    assert.ok('echo: one two three four five six'.startsWith(text) && text.length < 30, text);
  });

  await check(`${api}: unknown model is a 404`, async () => {
    await assert.rejects(chat({ ...fields, model: 'no-such-model' }).invoke('hi'), (err) => {
      assert.equal(err.status, 404, `${err?.name}: ${err?.message}`);
      assert.match(err.message, /no-such-model/);
      assert.equal(err.lc_error_code, 'MODEL_NOT_FOUND');
      return true;
    });
  });
}

await check('anthropic provider behind the gateway: invoke, tools', async () => {
  const msg = await chat({ model: anthropicAlias }).invoke('hello claude');
  assert.equal(msg.text, 'echo: hello claude');
  const ai = await chat({ model: anthropicAlias }).bindTools([weather]).invoke([new HumanMessage('weather in Rome')]);
  assert.equal(ai.tool_calls[0]?.name, 'get_weather', JSON.stringify(ai));
});

await check('OpenAIEmbeddings: embedQuery, embedDocuments', async () => {
  const emb = new OpenAIEmbeddings({ model: 'embed', apiKey, configuration, maxRetries: 0 });
  sameVector(await emb.embedQuery('alpha beta'), expectVector);
  const docs = await emb.embedDocuments(['alpha beta', 'gamma']);
  assert.equal(docs.length, 2);
  sameVector(docs[0], expectVector);
  // What it sent: plain text (LangChain JS does not send token ids, as
  // LangChain Python does by default), in the SDK's default base64.
  const sent = last('/embeddings').body;
  assert.deepEqual(sent.input, ['alpha beta', 'gamma']);
  assert.equal(sent.encoding_format, 'base64');
});

done();
