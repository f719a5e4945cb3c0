// The Vercel AI SDK under test: v6 (`ai@6`, `@ai-sdk/openai@3`) by default, v5 (`ai@5`,
// `@ai-sdk/openai@2`, installed under npm aliases) with AI_SDK=5. Both speak the Responses API
// through `openai('<model>')`.
const major = process.env.AI_SDK ?? "6";
const [ai, provider] =
  major === "5"
    ? await Promise.all([import("ai-v5"), import("ai-sdk-openai-v2")])
    : await Promise.all([import("ai"), import("@ai-sdk/openai")]);

export const { generateText, streamText } = ai;

export function bridgeModel() {
  const openai = provider.createOpenAI({
    baseURL: process.env.BRIDGE_BASE_URL,
    apiKey: process.env.BRIDGE_API_KEY,
  });
  return openai(process.env.BRIDGE_MODEL ?? "o1");
}
