import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGunzip } from 'node:zlib'
import tar from 'tar-stream'
import type { Header } from 'tar-stream'
import { GrailError } from '../../errors.js'
import { fromHeader } from './headers.js'
import type { TarEntry } from './types.js'

export type EntryHandler = (entry: TarEntry, content: NodeJS.ReadableStream) => Promise<void>

/**
 * Reads a tar or tar.gz (gzip is recognised by its magic bytes, not the name) entry by entry, calling
 * `onEntry` with the normalised entry and its content and waiting for it before the next header is
 * parsed, so memory stays flat whatever the layer size. The content is tar-stream's readable (async
 * iterable, pipeable); what the handler leaves unread is drained afterwards. The root entry ('./') is
 * skipped; names that could leave the root and unknown entry types are refused with UNSAFE_TAR, an
 * unreadable archive is BAD_TAR. If the handler throws, reading stops and the source is closed.
 */
export function readLayer(source: string | NodeJS.ReadableStream, onEntry: EntryHandler): Promise<void> {
  const label = typeof source === 'string' ? source : 'tar stream'
  return readTar(source, label, async (header, content) => {
    const entry = fromHeader(header, label)
    if (entry !== undefined) await onEntry(entry, content)
  })
}

/**
 * Lists a layer as a map from path to entry, with the sha256 (hex) of every regular file's content, for
 * comparing two builds file by file. When a path occurs twice the later entry wins, as on extraction.
 */
export async function listLayer(source: string): Promise<Map<string, TarEntry & { sha256?: string }>> {
  const listed = new Map<string, TarEntry & { sha256?: string }>()
  await readLayer(source, async (entry, content) => {
    if (entry.type !== 'file') {
      listed.set(entry.path, entry)
      return
    }
    const hash = createHash('sha256')
    for await (const chunk of content) hash.update(chunk as Buffer)
    listed.set(entry.path, { ...entry, sha256: hash.digest('hex') })
  })
  return listed
}

/** Raw header-level reader shared with the extractor, which needs the names as written for its errors. */
export async function readTar(
  source: string | NodeJS.ReadableStream,
  label: string,
  onHeader: (header: Header, content: NodeJS.ReadableStream) => Promise<void>,
): Promise<void> {
  const raw = await openMaybeGzipped(source)
  const extract = tar.extract()
  const stages: NodeJS.ReadWriteStream[] = raw.gzipped ? [createGunzip({ chunkSize: 64 * 1024 })] : []
  const parsing = pipeline([raw.stream, ...stages, extract as unknown as NodeJS.WritableStream])
  let handlerFailed = false
  try {
    for await (const content of extract) {
      try {
        await onHeader(content.header, content as unknown as NodeJS.ReadableStream)
      } catch (err) {
        handlerFailed = true
        throw err
      }
      // resuming drains what the handler left unread; tar-stream only moves on once the body is consumed
      content.resume()
    }
    await parsing
  } catch (err) {
    raw.stream.destroy()
    // the parser's own failure, if any, follows the one thrown here (it is the cause or a consequence)
    await parsing.catch(() => undefined)
    throw handlerFailed ? err : asBadTar(err, label)
  }
}

/** Peeks at the first bytes to tell gzip from plain tar, then hands back a stream that still has them. */
async function openMaybeGzipped(
  source: string | NodeJS.ReadableStream,
): Promise<{ stream: Readable; gzipped: boolean }> {
  const input = typeof source === 'string' ? createReadStream(source) : source
  const iterator = chunks(input)
  const head: Buffer[] = []
  let length = 0
  while (length < 2) {
    const next = await iterator.next()
    if (next.done) break
    head.push(next.value)
    length += next.value.length
  }
  const first = Buffer.concat(head)
  const gzipped = first[0] === 0x1f && first[1] === 0x8b
  async function* replay(): AsyncGenerator<Buffer> {
    if (first.length > 0) yield first
    yield* iterator
  }
  return { stream: Readable.from(replay(), { objectMode: false }), gzipped }
}

async function* chunks(input: NodeJS.ReadableStream): AsyncGenerator<Buffer> {
  for await (const chunk of input) yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk
}

/** Parse errors from tar-stream and zlib name no archive: they become a user error that does. */
function asBadTar(err: unknown, label: string): unknown {
  if (!(err instanceof Error) || err instanceof GrailError) return err
  if ((err as NodeJS.ErrnoException).syscall !== undefined) return err
  return new GrailError('BAD_TAR', `${label} is not a readable tar archive: ${err.message}`, {
    hint: 'the archive is truncated or corrupt; fetch or build it again',
    cause: err,
  })
}
