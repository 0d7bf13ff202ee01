// A tool loop with extended thinking through Vigil's gateway, with the
// official OpenAI Node SDK, against the anthropic plugin and
// test/anthropicstub (which answers with a signed thinking block first,
// a redacted_thinking block after it when the user's text holds
// "[redacted-thinking]", calls the first tool with {"city": <user text>},
// answers tool results with "tool said: RESULT", and refuses a tool-loop
// continuation whose assistant turn does not start with its thinking
// blocks, or whose blocks came back changed).
// test/gateway_anthropic_thinking_test.go runs this (node
// sdk_thinking_anthropic.mjs) with the gateway's URL and a token in the
// environment, then checks what the stub received. Any failed check
// throws, and node exits non-zero.
import assert from 'node:assert/strict';
import { BadRequestError } from 'openai';
import { client, exchanges, check, done } from './harness.mjs';

const model = process.env.VIGIL_THINKING_ALIAS ?? 'claude-tools';
const tools = [
  {
    type: 'function',
    function: { name: 'get_weather', description: 'The weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
  },
];

// assertBlocks checks an answer's thinking_blocks: a signed thinking
// block with the reasoning text, then (redacted) a redacted_thinking
// block, in LiteLLM's shapes and nothing more.
const assertBlocks = (blocks, reasoning, redacted) => {
  assert.equal(blocks.length, redacted ? 2 : 1, JSON.stringify(blocks));
  assert.deepEqual(Object.keys(blocks[0]).sort(), ['signature', 'thinking', 'type']);
  assert.equal(blocks[0].type, 'thinking');
  assert.equal(blocks[0].thinking, reasoning);
  assert.ok(blocks[0].signature.length > 10, blocks[0].signature);
  if (redacted) {
    assert.deepEqual(Object.keys(blocks[1]).sort(), ['data', 'type']);
    assert.equal(blocks[1].type, 'redacted_thinking');
    assert.ok(blocks[1].data.length > 10, blocks[1].data);
  }
};

await check('tool loop with reasoning_effort, whole', async () => {
  const text = 'weather in Paris [redacted-thinking]';
  const messages = [{ role: 'user', content: text }];
  const first = await client.chat.completions.create({ model, messages, tools, reasoning_effort: 'low' });
  const choice = first.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, 'Let me call get_weather.');
  assert.equal(choice.message.reasoning_content, `Thinking about: ${text}`);
  assertBlocks(choice.message.thinking_blocks, `Thinking about: ${text}`, true);
  const call = choice.message.tool_calls[0];
  assert.deepEqual(JSON.parse(call.function.arguments), { city: text });
  // The usual loop: the assistant message back as the SDK returned it
  // (its reasoning_content and thinking_blocks included), then the
  // tool's result.
  messages.push({ ...choice.message }, { role: 'tool', tool_call_id: call.id, content: '18C' });
  const second = await client.chat.completions.create({ model, messages, tools, reasoning_effort: 'low' });
  assert.equal(second.choices[0].finish_reason, 'stop');
  assert.equal(second.choices[0].message.content, 'tool said: 18C');
  assert.equal(second.choices[0].message.reasoning_content, 'Thinking about: ');
  assertBlocks(second.choices[0].message.thinking_blocks, 'Thinking about: ', false);
  const sent = exchanges.at(-1).body.messages[1];
  assert.deepEqual(sent.thinking_blocks, choice.message.thinking_blocks);
  assert.equal(sent.reasoning_content, choice.message.reasoning_content);

  // Without the blocks (a client that drops unknown fields): refused
  // before any upstream call, saying what to send.
  const { thinking_blocks: _, ...bare } = choice.message;
  await assert.rejects(
    client.chat.completions.create({ model, messages: [messages[0], bare, messages[2]], tools, reasoning_effort: 'low' }),
    (e) => e instanceof BadRequestError && e.status === 400 && e.param === 'messages[1].thinking_blocks' && /send the assistant message back with its thinking_blocks/.test(e.message),
  );
  // With a block changed: the upstream's own refusal.
  const changed = { ...choice.message, thinking_blocks: [{ ...choice.message.thinking_blocks[0], thinking: 'something else' }] };
  await assert.rejects(
    client.chat.completions.create({ model, messages: [messages[0], changed, messages[2]], tools, reasoning_effort: 'low' }),
    (e) => e instanceof BadRequestError && e.status === 400 && /Invalid `signature` in `thinking` block/.test(e.message),
  );
});

await check('tool loop with reasoning_effort, streamed with the streaming helper', async () => {
  const text = 'weather in Oslo';
  const messages = [{ role: 'user', content: text }];
  const round = async () => {
    const pieces = [];
    const blockChunks = [];
    const stream = client.chat.completions.stream({ model, messages, tools, reasoning_effort: 'medium', stream_options: { include_usage: true } });
    stream.on('chunk', (chunk) => {
      const delta = chunk.choices[0]?.delta;
      if (delta?.reasoning_content) pieces.push(delta.reasoning_content);
      if (delta?.thinking_blocks) blockChunks.push(delta.thinking_blocks);
    });
    const final = await stream.finalChatCompletion();
    return { final, pieces, blockChunks };
  };
  const first = await round();
  const choice = first.final.choices[0];
  assert.equal(choice.finish_reason, 'tool_calls');
  // The reasoning came in pieces, the blocks whole in one chunk, which
  // the helper (it keeps the last value of a field it does not know)
  // holds in the final message.
  assert.ok(first.pieces.length > 1, `${first.pieces.length} reasoning pieces`);
  assert.equal(first.pieces.join(''), `Thinking about: ${text}`);
  assert.equal(first.blockChunks.length, 1);
  assertBlocks(first.blockChunks[0], `Thinking about: ${text}`, false);
  assert.deepEqual(choice.message.thinking_blocks, first.blockChunks[0]);
  const call = choice.message.tool_calls[0];
  // The helper's message as it is, but for parsed (its own parse of the
  // content, which is not an API field: the gateway refuses unknown
  // fields). Its reasoning_content is the last piece only (the helper
  // does not join fields it does not know): accepted and ignored.
  const { parsed: _, ...message } = choice.message;
  messages.push(message, { role: 'tool', tool_call_id: call.id, content: '9C' });
  const second = await round();
  assert.equal(second.final.choices[0].message.content, 'tool said: 9C');
  assert.equal(second.pieces.join(''), 'Thinking about: ');
  assert.ok(second.final.usage.completion_tokens > 0);
  assert.deepEqual(exchanges.at(-1).body.messages[1].thinking_blocks, first.blockChunks[0]);
});

done();
