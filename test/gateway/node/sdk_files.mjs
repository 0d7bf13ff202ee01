// PDF files through Vigil's gateway with the official OpenAI Node SDK:
// chat completions' file parts and the Responses API's input_file, to an
// OpenAI-wire target (file parts upstream) and an Anthropic one (document
// blocks upstream). test/gateway_files_test.go runs it (node
// sdk_files.mjs) with the gateway's URL, a token and the Anthropic alias
// in the environment; both upstream stubs check what they receive as the
// real APIs do and echo "[file NAME N bytes]" or "[document TITLE N
// bytes]". Any failed check throws, and node exits non-zero.
import assert from 'node:assert/strict';
import { BadRequestError } from 'openai';
import { client, check, done } from './harness.mjs';

// A minimal one-page PDF, written by hand.
const pdf = Buffer.from(
  '%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n' +
    '3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 72 72]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n',
);
const fileData = `data:application/pdf;base64,${pdf.toString('base64')}`;
const anthropic = process.env.VIGIL_ANTHROPIC_ALIAS;
const targets = [
  ['default', `echo: summarize [file report.pdf ${pdf.length} bytes]`],
  [anthropic, `echo: summarize [document report.pdf ${pdf.length} bytes]`],
];

await check('chat completions: a file part (PDF)', async () => {
  const content = [
    { type: 'text', text: 'summarize ' },
    { type: 'file', file: { file_data: fileData, filename: 'report.pdf' } },
  ];
  for (const [model, want] of targets) {
    const res = await client.chat.completions.create({ model, messages: [{ role: 'user', content }] });
    assert.equal(res.choices[0].message.content, want, model);
    let text = '';
    const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content }], stream: true });
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    assert.equal(text, want, `${model} streamed`);
  }
});

await check('chat completions: file refusals name the field', async () => {
  for (const [file, param, re] of [
    [{ file_id: 'file-abc123' }, 'messages[0].content[0].file.file_id', /Files API/],
    [{ file_data: fileData }, 'messages[0].content[0].file.filename', /filename is required/],
    [{ file_data: `data:text/plain;base64,${Buffer.from('hi').toString('base64')}`, filename: 'a.txt' }, 'messages[0].content[0].file.file_data', /PDF files \(application\/pdf\) only/],
    [{ file_data: `data:application/pdf;base64,${Buffer.from('not a pdf').toString('base64')}`, filename: 'a.pdf' }, 'messages[0].content[0].file.file_data', /not a PDF file/],
  ]) {
    await assert.rejects(
      client.chat.completions.create({ model: 'default', messages: [{ role: 'user', content: [{ type: 'file', file }] }] }),
      (e) => e instanceof BadRequestError && e.param === param && re.test(e.message),
    );
  }
});

await check('responses: an input_file (PDF)', async () => {
  const input = [{
    role: 'user',
    content: [
      { type: 'input_text', text: 'summarize ' },
      { type: 'input_file', file_data: fileData, filename: 'report.pdf' },
    ],
  }];
  for (const [model, want] of targets) {
    const res = await client.responses.create({ model, input });
    assert.equal(res.output_text, want, model);
    let text = '';
    const stream = await client.responses.create({ model, input, stream: true });
    for await (const ev of stream) if (ev.type === 'response.output_text.delta') text += ev.delta;
    assert.equal(text, want, `${model} streamed`);
  }
});

await check('responses: input_file refusals name the field', async () => {
  for (const [part, param] of [
    [{ type: 'input_file', file_id: 'file-abc123' }, 'input[0].content[0].file_id'],
    [{ type: 'input_file', file_url: 'https://docs.test/report.pdf', filename: 'report.pdf' }, 'input[0].content[0].file_url'],
    [{ type: 'input_file', file_data: fileData }, 'input[0].content[0].filename'],
  ]) {
    await assert.rejects(
      client.responses.create({ model: 'default', input: [{ role: 'user', content: [part] }] }),
      (e) => e instanceof BadRequestError && e.param === param,
    );
  }
});

done();
