// The JSON Schema subset that constrained decoding enforces — what tool parameters and
// structured outputs use: object (properties, required), string (minLength, maxLength), number, integer,
// boolean, null, array (items), enum and const, anyOf/oneOf, nested freely. Anything else is an error
// naming the keyword and where it is, so a schema is never silently half-enforced.

export type SchemaNode =
  | { kind: "object"; properties: { key: string; node: SchemaNode; required: boolean }[] }
  | { kind: "anyObject" }
  | { kind: "array"; items: SchemaNode }
  /** a string of minLength to maxLength characters (code points; an escape is one) */
  | { kind: "string"; minLength: number; maxLength: number | null }
  | { kind: "number"; integer: boolean }
  | { kind: "boolean" }
  | { kind: "null" }
  | { kind: "literals"; values: string[] }
  /** any JSON value (response_format json_object's members, an array without items) */
  | { kind: "any" }
  /** one of several schemas (anyOf; oneOf is read the same way: the alternatives are not checked to exclude each other) */
  | { kind: "anyOf"; options: SchemaNode[] };

const ANNOTATIONS = new Set(["description", "title", "$schema", "default", "examples", "$comment"]);
const KEYWORDS: Record<string, Set<string>> = {
  object: new Set(["type", "properties", "required", "additionalProperties"]),
  array: new Set(["type", "items"]),
  string: new Set(["type", "minLength", "maxLength"]),
  number: new Set(["type"]),
  integer: new Set(["type"]),
  boolean: new Set(["type"]),
  null: new Set(["type"]),
};

export class SchemaError extends Error {}

function fail(path: string, why: string): never {
  throw new SchemaError(`response schema at ${path || "the top"}: ${why}`);
}

/** Compiles a JSON Schema (the subset above) into the tree the decoder walks. */
export function compileSchema(schema: unknown, path = ""): SchemaNode {
  if (schema === true || (typeof schema === "object" && schema !== null && Object.keys(schema).length === 0))
    return { kind: "any" };
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) fail(path, "a schema must be an object");
  const s = schema as Record<string, unknown>;
  const union = s.anyOf ?? s.oneOf;
  if (union !== undefined) {
    const key = "anyOf" in s ? "anyOf" : "oneOf";
    if (!Array.isArray(union) || union.length === 0) fail(`${path}/${key}`, `${key} must be a non-empty array`);
    for (const k of Object.keys(s))
      if (k !== key && !ANNOTATIONS.has(k)) fail(`${path}/${k}`, `keyword "${k}" is not supported beside ${key}`);
    return { kind: "anyOf", options: union.map((o, i) => compileSchema(o, `${path}/${key}/${i}`)) };
  }
  if ("enum" in s || "const" in s) {
    const values = "const" in s ? [s.const] : s.enum;
    if (!Array.isArray(values) || values.length === 0) fail(`${path}/enum`, "enum must be a non-empty array");
    for (const k of Object.keys(s))
      if (!["enum", "const", "type"].includes(k) && !ANNOTATIONS.has(k))
        fail(`${path}/${k}`, `keyword "${k}" is not supported beside enum`);
    return { kind: "literals", values: [...new Set(values.map((v) => JSON.stringify(v)))] };
  }
  const type = s.type;
  if (typeof type !== "string")
    fail(`${path}/type`, Array.isArray(type) ? "a list of types is not supported" : "type is required (or enum/const)");
  const allowed = KEYWORDS[type];
  if (!allowed) fail(`${path}/type`, `type "${type}" is not supported`);
  for (const k of Object.keys(s))
    if (!allowed.has(k) && !ANNOTATIONS.has(k))
      fail(`${path}/${k}`, `keyword "${k}" is not supported for type ${type}`);
  switch (type) {
    case "object": {
      if (s.additionalProperties !== undefined && s.additionalProperties !== false)
        fail(`${path}/additionalProperties`, "only additionalProperties: false is supported");
      const props = (s.properties ?? {}) as Record<string, unknown>;
      if (typeof props !== "object" || Array.isArray(props)) fail(`${path}/properties`, "properties must be an object");
      const required = (s.required ?? []) as unknown[];
      if (!Array.isArray(required)) fail(`${path}/required`, "required must be an array of names");
      for (const r of required)
        if (typeof r !== "string" || !(r in props)) fail(`${path}/required`, `${JSON.stringify(r)} is not a property`);
      if (Object.keys(props).length === 0 && s.additionalProperties === undefined) return { kind: "anyObject" };
      return {
        kind: "object",
        properties: Object.entries(props).map(([key, p]) => ({
          key,
          node: compileSchema(p, `${path}/properties/${key}`),
          required: required.includes(key),
        })),
      };
    }
    case "array":
      return {
        kind: "array",
        items: s.items === undefined ? { kind: "any" } : compileSchema(s.items, `${path}/items`),
      };
    case "string": {
      const bound = (k: "minLength" | "maxLength") => {
        const v = s[k];
        if (v === undefined) return null;
        if (typeof v !== "number" || !Number.isInteger(v) || v < 0)
          fail(`${path}/${k}`, `${k} must be an integer >= 0`);
        return v;
      };
      const [minLength, maxLength] = [bound("minLength") ?? 0, bound("maxLength")];
      if (maxLength !== null && minLength > maxLength) fail(`${path}/minLength`, "minLength is above maxLength");
      return { kind: "string", minLength, maxLength };
    }
    case "number":
    case "integer":
      return { kind: "number", integer: type === "integer" };
    case "boolean":
      return { kind: "boolean" };
    default:
      return { kind: "null" };
  }
}
