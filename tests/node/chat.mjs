// One non-streaming and one streaming call through the official openai npm package (the
// library FastGPT uses). Prints a JSON summary for the Python test to check.
import OpenAI from "openai";

const client = new OpenAI({
  baseURL: process.env.BRIDGE_BASE_URL,
  apiKey: process.env.BRIDGE_API_KEY,
  maxRetries: 0,
});
const model = process.env.BRIDGE_MODEL ?? "o1";
const messages = [{ role: "user", content: "hi from node" }];

const completion = await client.chat.completions.create({ model, messages });
let streamed = "";
let roles = [];
let finish = null;
const stream = await client.chat.completions.create({ model, messages, stream: true });
for await (const chunk of stream) {
  const choice = chunk.choices[0];
  if (!choice) continue;
  if (choice.delta.role) roles.push(choice.delta.role);
  streamed += choice.delta.content ?? "";
  finish = choice.finish_reason ?? finish;
}
let errorStatus = null;
try {
  await client.chat.completions.create({ model: "no-such-model", messages });
} catch (err) {
  errorStatus = err.status;
}
console.log(JSON.stringify({
  content: completion.choices[0].message.content,
  usage: completion.usage,
  streamed,
  roles,
  finish,
  errorStatus,
}));
