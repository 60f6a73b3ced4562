import { ApiError, postJson } from './api.js'
import { type Child, h, replace } from './dom.js'
import { getToken, setToken } from './tokens.js'

/** An extra input of an action's dialog, besides the reason and the token. */
export type ActionField =
  | { kind: 'select'; name: string; label: string; options: Array<{ value: string; label: string }> }
  | { kind: 'checkbox'; name: string; label: string }

/** A write the dashboard can make: what the dialog says, where it POSTs, and the body it sends. */
export interface ActionSpec {
  /** `Roll back web in prod` */
  title: string
  /** what will happen, shown above the form */
  summary: Child[]
  /** the write endpoint (an apiPath) */
  path: string
  fields?: ActionField[]
  /** the body without the reason, from the extra fields' values (a checkbox is 'on' or '') */
  body(values: Record<string, string>): Record<string, unknown>
  /** what the answer means, in a line or two */
  describe?(result: unknown): Child[]
}

let dialog: HTMLDialogElement | undefined

/**
 * Opens the confirmation dialog of `spec`: it asks for a reason and a write token (kept in this tab's
 * sessionStorage once a write succeeded with it), POSTs, and shows what the API answered; `done` runs
 * after a write that succeeded.
 */
export function openAction(spec: ActionSpec, done: () => void): void {
  if (!dialog) {
    dialog = h('dialog', { id: 'action', class: 'action' })
    document.body.appendChild(dialog)
  }
  const d = dialog
  const reason = h('textarea', {
    name: 'reason',
    required: true,
    rows: 3,
    placeholder: 'why (goes into the audit log)',
  })
  const token = h('input', {
    name: 'token',
    type: 'password',
    autocomplete: 'off',
    spellcheck: 'false',
    placeholder: 'grail_…',
  })
  token.value = getToken('write') ?? ''
  const extras = (spec.fields ?? []).map((f) => {
    if (f.kind === 'checkbox')
      return h('label', { class: 'check' }, h('input', { type: 'checkbox', name: f.name }), ` ${f.label}`)
    return h(
      'label',
      null,
      f.label,
      h('select', { name: f.name }, ...f.options.map((o) => h('option', { value: o.value }, o.label))),
    )
  })
  const result = h('div', { class: 'result', 'aria-live': 'polite' })
  const submit = h('button', { type: 'submit', class: 'danger' }, 'Confirm')
  const cancel = h('button', { type: 'button', onclick: () => d.close() }, 'Cancel')
  const form = h(
    'form',
    { method: 'dialog' },
    h('h2', null, spec.title),
    h('div', { class: 'summary' }, spec.summary),
    ...extras,
    h('label', null, 'Reason', reason),
    h('label', null, 'Write token', token),
    h(
      'p',
      { class: 'muted' },
      'A token with scope write (`grail token create --scope write`). It is kept for this tab only.',
    ),
    result,
    h('div', { class: 'buttons' }, cancel, submit),
  )
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    if (reason.value.trim() === '') {
      replace(result, h('p', { class: 'error' }, 'Say why: a reason is required.'))
      reason.focus()
      return
    }
    const values: Record<string, string> = {}
    for (const el of Array.from(form.querySelectorAll<HTMLInputElement | HTMLSelectElement>('[name]'))) {
      if (el.name === 'reason' || el.name === 'token') continue
      values[el.name] =
        el instanceof HTMLInputElement && el.type === 'checkbox' ? (el.checked ? 'on' : '') : el.value
    }
    const t = token.value.trim()
    submit.disabled = true
    replace(result, h('p', { class: 'working' }, 'Working… (a rollout waits for health checks)'))
    postJson<unknown>(spec.path, { ...spec.body(values), reason: reason.value.trim() }, t === '' ? null : t)
      .then((res) => {
        if (t !== '') setToken('write', t)
        // a rollout that failed its gate (rollback: ok, promote: rollout.ok) was rolled back: the write
        // was made, and did not end as asked
        const r = res as { ok?: unknown; rollout?: { ok?: unknown } | null } | null
        const failed = r?.ok === false || r?.rollout?.ok === false
        replace(
          result,
          h(
            'div',
            { class: failed ? 'error' : 'done', 'data-outcome': failed ? 'failed' : 'ok' },
            h('strong', null, failed ? 'The API did it, and the rollout failed.' : 'Done.'),
            ' ',
            spec.describe ? spec.describe(res) : [],
          ),
          h('details', null, h('summary', null, 'answer'), h('pre', null, JSON.stringify(res, null, 2))),
        )
        submit.hidden = true
        cancel.textContent = 'Close'
        done()
      })
      .catch((err: unknown) => {
        const e = err instanceof ApiError ? err : new ApiError(0, 'ERROR', String(err), undefined)
        replace(
          result,
          h(
            'div',
            { class: 'error', 'data-outcome': 'error', 'data-status': e.status },
            h('strong', null, `${e.status || 'error'} ${e.code}`),
            `: ${e.message}`,
            e.hint ? h('div', { class: 'hint' }, `hint: ${e.hint}`) : null,
          ),
        )
        submit.disabled = false
      })
  })
  replace(d, form)
  d.showModal()
  reason.focus()
}
