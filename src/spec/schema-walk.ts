/**
 * Walks the zod schema along a key path, on the input side, to find what an error message needs:
 * the keys allowed at a spot (for "did you mean") and the description of a key (for "missing key").
 */
import type { z } from 'zod'

type Schema = z.core.$ZodType

function def(s: Schema): z.core.$ZodTypeDef & Record<string, unknown> {
  return s._zod.def as z.core.$ZodTypeDef & Record<string, unknown>
}

function describedAs(s: Schema): string | undefined {
  return (s as { description?: string }).description
}

/** The schemas a wrapper stands for (optional, default, pipes, unions are looked through). */
function expand(s: Schema, out: Schema[] = []): Schema[] {
  const d = def(s)
  switch (d.type) {
    case 'optional':
    case 'nullable':
    case 'default':
    case 'prefault':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      return expand(d.innerType as Schema, out)
    case 'pipe': {
      const input = d.in as Schema
      return expand(def(input).type === 'transform' ? (d.out as Schema) : input, out)
    }
    case 'union':
      for (const o of d.options as Schema[]) expand(o, out)
      return out
    default:
      out.push(s)
      return out
  }
}

/** The schemas (with their wrappers) found at `path`; several when a union leaves it open. */
function schemasAt(root: Schema, path: readonly PropertyKey[]): Schema[] {
  let current: Schema[] = [root]
  for (const seg of path) {
    const next: Schema[] = []
    for (const s of current.flatMap((c) => expand(c))) {
      const d = def(s)
      if (d.type === 'object') {
        const child = (d.shape as Record<string, Schema>)[String(seg)]
        if (child) next.push(child)
      } else if (d.type === 'record') next.push(d.valueType as Schema)
      else if (d.type === 'array' && typeof seg === 'number') next.push(d.element as Schema)
    }
    current = next
  }
  return current
}

/**
 * Keys a mapping at `path` may have (empty when the spot is not a fixed-key mapping). Where a union
 * offers several mappings, only those that accept every key in `accepted` count: `{image, ref}` is
 * an image base, whose keys are image and version.
 */
export function allowedKeysAt(
  root: Schema,
  path: readonly PropertyKey[],
  accepted: readonly string[] = [],
): string[] {
  const shapes = schemasAt(root, path)
    .flatMap((c) => expand(c))
    .filter((s) => def(s).type === 'object')
    .map((s) => Object.keys(def(s).shape as object))
  const fitting = shapes.filter((keys) => accepted.every((k) => keys.includes(k)))
  return [...new Set((fitting.length > 0 ? fitting : shapes).flat())]
}

/** The description of the key at `path`, from the outermost wrapper that has one. */
export function descriptionAt(root: Schema, path: readonly PropertyKey[]): string | undefined {
  for (const s of schemasAt(root, path)) {
    let cur: Schema | undefined = s
    while (cur) {
      const text = describedAs(cur)
      if (text) return text
      const d = def(cur)
      cur = 'innerType' in d ? (d.innerType as Schema) : d.type === 'pipe' ? (d.in as Schema) : undefined
    }
  }
  return undefined
}
