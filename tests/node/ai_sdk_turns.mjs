// A chat as AI SDK apps hold one: the second turn sends the whole conversation — the first
// user message, the first turn's `response.messages` (the answer, which @ai-sdk/openai sends as
// `{"type": "item_reference", "id": "msg_…"}` with the default `store: true`) and the new
// message. Once with generateText, once with streamText. Prints, per turn, the request body
// the SDK sent, the answer and the bridge's X-Dify-Conversation-Id header, for
// tests/dialects/test_response_continuity.py. AI_SDK=5 runs it with ai@5 (see sdk.mjs).
import { bridgeModel, generateText, streamText } from "./sdk.mjs";

const model = bridgeModel();
const header = (headers) => headers?.["x-dify-conversation-id"] ?? null;

function turn(result, response) {
  const body = result.request?.body;
  return {
    text: result.text,
    body: typeof body === "string" ? JSON.parse(body) : (body ?? null),
    conversation: header(response.headers),
  };
}

async function generated(first, second) {
  const history = [{ role: "user", content: first }];
  const one = await generateText({ model, messages: history, maxRetries: 0 });
  history.push(...one.response.messages, { role: "user", content: second });
  const two = await generateText({ model, messages: history, maxRetries: 0 });
  return [turn(one, one.response), turn(two, two.response)];
}

async function streamed(first, second) {
  const history = [{ role: "user", content: first }];
  const turns = [];
  for (const next of [second, null]) {
    const stream = streamText({ model, messages: history, maxRetries: 0 });
    let text = "";
    for await (const delta of stream.textStream) text += delta;
    const response = await stream.response;
    turns.push(turn({ text, request: await stream.request }, response));
    if (next !== null) history.push(...response.messages, { role: "user", content: next });
  }
  return turns;
}

console.log(
  JSON.stringify({
    generate: await generated(
      process.env.TURN_ONE ?? "first question",
      process.env.TURN_TWO ?? "second question",
    ),
    stream: await streamed(
      process.env.STREAM_ONE ?? "first streamed question",
      process.env.STREAM_TWO ?? "second streamed question",
    ),
  }),
);
