/** RFC 7396 JSON merge patch, as session-core applies it (libs/merge_patch). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

function isObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** `target` with `patch` applied; neither argument is modified. */
export function applyMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) {
    return patch;
  }
  const result: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
    } else {
      result[key] = applyMergePatch(result[key], value);
    }
  }
  return result;
}

/** The state stays a JSON object (core refuses others). */
export function mergeState(state: JsonObject, patch: Json): JsonObject {
  const merged = applyMergePatch(state, patch);
  return isObject(merged) ? merged : {};
}
