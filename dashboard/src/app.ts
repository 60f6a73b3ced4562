import type { EventRecord } from '../../src/state/events.js'
import type { ActionSpec } from './actions.js'
import type { Topic } from './live.js'
import type { EnvironmentSummary } from './shapes.js'

/** What a page gets from the dashboard around it. */
export interface App {
  /** the environments `grail serve` knows (fetched once, again after a reload of the spec) */
  environments(): Promise<EnvironmentSummary[]>
  /** opens the confirmation dialog of a write; the page refreshes after it succeeded */
  act(spec: ActionSpec): void
  /** shows an API failure above the page (a 401 asks for a read token) */
  failed(err: unknown): void
  /** clears what `failed` showed, after a fetch that worked */
  recovered(): void
}

/** A page: what it shows, how it refetches, and what it does with each live event. */
export interface Page {
  /** the topics whose events make it refetch */
  topics: Topic[]
  /** refetches what `topics` (all of the page's when omitted) touched, and renders */
  refresh(topics?: Set<Topic>): Promise<void>
  /** how often to refetch without an event (health changes that make no event), in ms */
  pollMs?: number
  /** the topics a poll refetches (default: all of the page's) */
  pollTopics?: Topic[]
  /** each live event, before the refresh it causes */
  onEvent?(e: EventRecord): void
  /** every second: countdowns and ages */
  tick?(now: number): void
}

export type PageFactory = (root: HTMLElement, app: App) => Page
