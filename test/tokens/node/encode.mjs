// Encodes test cases with js-tiktoken (pure JS, ranks bundled in the
// package): the reference test/tokens_test.go compares Vigil's tokenizer
// with. Reads {"cases":[{"encoding","text"}]} on stdin and writes
// {"ids":[[...], ...]} on stdout. Special tokens in the text are encoded as
// ordinary text (allowedSpecial and disallowedSpecial both empty).
import { getEncoding } from "js-tiktoken";

// The chunks are joined as bytes and decoded once: decoding each chunk
// on its own turns a character split between two chunks into U+FFFD.
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { cases } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const encodings = {};
const ids = cases.map(({ encoding, text }) => {
  encodings[encoding] ??= getEncoding(encoding);
  return encodings[encoding].encode(text, [], []);
});
process.stdout.write(JSON.stringify({ ids }));
