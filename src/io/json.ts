// JSON for people and other tools: what llmfab prints or writes uses snake_case keys
// (as OpenAI's API and Hugging Face's files do), whatever the TypeScript names are.

const snake = (key: string) => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/** A copy of value with every object key in snake_case (firstCopy -> first_copy). */
export function snakeCaseKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeCaseKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [snake(k), snakeCaseKeys(v)]));
}

/** One line of JSON with snake_case keys. */
export function jsonLine(value: unknown): string {
  return `${JSON.stringify(snakeCaseKeys(value))}\n`;
}
