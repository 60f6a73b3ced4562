/**
 * The one way the dashboard makes DOM: elements from a tag, attributes and children, where every string
 * becomes a text node. Nothing here parses HTML, so a value from the API (an instance id, a hotfix
 * reason, a file diff) is always shown as text, never run or rendered as markup.
 */

export type Child = Node | string | number | null | undefined | false | Child[]

type Listener = (e: Event) => void
export type Attrs = Record<string, string | number | boolean | null | undefined | Listener>

/** Attributes that would put markup or inline style into the page (refused: the CSP forbids inline style too). */
const FORBIDDEN = new Set(['style', 'innerhtml', 'outerhtml', 'srcdoc'])

/** An element with `attrs` (`onclick`-style keys add listeners; false/null/undefined leave it out) and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (FORBIDDEN.has(key.toLowerCase())) throw new Error(`attribute ${key} is not allowed`)
    if (typeof value === 'function') {
      if (!key.startsWith('on')) throw new Error(`${key}: only on* attributes take a function`)
      el.addEventListener(key.slice(2).toLowerCase(), value)
    } else if (value === true) el.setAttribute(key, '')
    else if (value !== false && value !== null && value !== undefined) {
      if (/^on/i.test(key)) throw new Error(`${key}: an event handler must be a function`)
      el.setAttribute(key, String(value))
    }
  }
  append(el, children)
  return el
}

/** Appends children to `parent`, strings and numbers as text nodes, arrays flattened, empty ones skipped. */
export function append(parent: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue
    if (Array.isArray(c)) append(parent, c)
    else if (typeof c === 'string' || typeof c === 'number')
      parent.appendChild(document.createTextNode(String(c)))
    else parent.appendChild(c)
  }
}

/** Replaces everything in `el` with `children`. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren()
  append(el, children)
}
