// The Vercel AI SDK's default OpenAI provider (`openai('<model>')` — the Responses API) against
// the bridge: generateText, streamText, and a follow-up via previousResponseId. Prints a JSON
// summary for tests/dialects/test_clients.py. AI_SDK=5 runs it with ai@5 (see sdk.mjs).
import { bridgeModel, generateText, streamText } from "./sdk.mjs";

const model = bridgeModel();

const first = await generateText({ model, prompt: "hi", maxRetries: 0 });
const followUp = await generateText({
  model,
  prompt: "and again",
  maxRetries: 0,
  providerOptions: { openai: { previousResponseId: first.providerMetadata?.openai?.responseId } },
});

const stream = streamText({ model, prompt: "hello stream", maxRetries: 0 });
let streamed = "";
for await (const delta of stream.textStream) streamed += delta;

console.log(
  JSON.stringify({
    text: first.text,
    reasoning: first.reasoningText ?? null,
    finish: first.finishReason,
    usage: first.usage,
    responseId: first.providerMetadata?.openai?.responseId ?? null,
    followUp: followUp.text,
    streamed,
    streamFinish: await stream.finishReason,
  }),
);
