import { z } from 'zod'
import { NAME_PATTERN, checkExactlyOne, integer, nameSchema, report, slugify } from './schema-common.js'
import { formatImageRef, parseImageRef } from './registry-ref.js'
import { didYouMean } from './suggest.js'
import type { BaseSource } from './types.js'

const VARIANTS = ['essential', 'minbase', 'required', 'important', 'standard'] as const
const BASE_KINDS = ['debian', 'image', 'oci', 'registry', 'rootfs'] as const
/** the kinds a string shorthand may name (a registry base is always a mapping) */
const SHORTHAND_KINDS = ['debian', 'image', 'oci', 'rootfs'] as const
const SHORTHANDS = ['scratch', 'debian:SUITE', 'image:NAME', 'oci:PATH', 'rootfs:PATH']

/** A token that ends up in mmdebstrap's argv: no leading "-", no commas or spaces. */
function token(expected: string, pattern: RegExp) {
  return z.string({ error: `expected ${expected}` }).regex(pattern, { error: `expected ${expected}` })
}

const suite = token('a Debian suite such as bookworm or trixie', /^[a-z0-9][a-z0-9.-]*$/)

const debianObject = z.strictObject({
  suite: suite.describe('Debian suite or codename: `bookworm`, `trixie`, `stable`...'),
  variant: z
    .enum(VARIANTS)
    .default('essential')
    .describe(
      'mmdebstrap variant: how much of Debian to install. Default `essential`, the smallest set that boots a shell.',
    ),
  include: z
    .array(
      token(
        'a Debian package name, optionally with =VERSION',
        /^[a-z0-9][a-z0-9+.-]+(=[0-9][A-Za-z0-9.+~:-]*)?$/,
      ),
    )
    .default([])
    .describe(
      'Extra packages to install (`busybox`, `ca-certificates`), each optionally pinned to a version (`tzdata=2024a-0+deb12u1`); the versions installed are recorded in grail.lock. A `policies.patch` build replaces a pin the archive has a newer version of. Default: none.',
    ),
  components: z
    .array(token('an archive component such as main', /^[a-z][a-z0-9-]*$/))
    .min(1)
    .default(['main'])
    .describe('Archive components. Default `[main]`.'),
  mirror: z
    .string()
    .regex(/^(https?|file):\/\/\S+$/, { error: 'expected a mirror URL (http://, https:// or file://)' })
    .optional()
    .describe("Debian mirror URL. Default: mmdebstrap's (deb.debian.org)."),
  architecture: token('a Debian architecture such as amd64 or arm64', /^[a-z0-9][a-z0-9-]*$/)
    .optional()
    .describe("Debian architecture (`amd64`, `arm64`). Default: the build host's."),
})

const objectForms = z.union([
  z.strictObject({
    debian: z
      .union([suite, debianObject])
      .describe('Bootstrap Debian with mmdebstrap (reproducible). A string is just the suite.'),
  }),
  z.strictObject({
    image: nameSchema('the name of another image in this spec').describe(
      'Build on another image of this spec (ancestry: a new version of it marks this image out of date).',
    ),
    version: integer('an image version ≥ 1', 1)
      .optional()
      .describe(
        'Pin a version of the base image. Default: the version its spec builds now (its newest active one if that is revoked).',
      ),
  }),
  z.strictObject({
    oci: z.string().min(1).describe('A local OCI image layout directory, relative to the spec file.'),
    ref: z.string().min(1).optional().describe('Ref name inside the layout. Default: its only image.'),
  }),
  z.strictObject({
    rootfs: z.string().min(1).describe('A rootfs tarball (.tar or .tar.gz), relative to the spec file.'),
  }),
  z.strictObject({
    registry: z
      .string({ error: 'expected an image reference such as registry.example.com/debian:bookworm' })
      .describe(
        'An image in a registry, `host[:port]/repo[:tag][@sha256:…]` (no tag: `latest`). The tag is resolved once and the manifest digest pinned in grail.lock; `build --refresh` resolves it again. The host is always written: Docker Hub is `registry-1.docker.io/library/NAME`.',
      ),
  }),
])

function parseShorthand(s: string, ctx: z.core.ParsePayload<unknown>): BaseSource {
  if (s === 'scratch') return { kind: 'scratch' }
  const colon = s.indexOf(':')
  const prefix = colon < 0 ? s : s.slice(0, colon)
  const rest = colon < 0 ? '' : s.slice(colon + 1)
  if (prefix === 'debian' && /^[a-z0-9][a-z0-9.-]*$/.test(rest)) {
    return { kind: 'debian', suite: rest, variant: 'essential', include: [], components: ['main'] }
  }
  if (prefix === 'debian' && rest !== '') {
    report(ctx, 'expected "debian:SUITE" with a suite such as bookworm', s, {
      hint: `try "debian:${rest.toLowerCase()}"`,
    })
    return { kind: 'scratch' }
  }
  if (prefix === 'image' && NAME_PATTERN.test(rest)) return { kind: 'image', image: rest }
  if (prefix === 'image' && rest !== '') {
    report(ctx, `expected "image:NAME" with a name of lowercase letters, digits and "-"`, s, {
      hint: `try "image:${slugify(rest)}"`,
    })
    return { kind: 'scratch' }
  }
  if (prefix === 'oci' && rest !== '') return { kind: 'oci', path: rest }
  if (prefix === 'rootfs' && rest !== '') return { kind: 'rootfs', path: rest }
  if (prefix === 'registry' || 'host' in parseImageRef(s)) {
    report(ctx, 'a registry base is a mapping, not a shorthand', s, {
      hint: `write base: {registry: ${prefix === 'registry' ? rest : s}}`,
    })
    return { kind: 'scratch' }
  }
  const near = didYouMean(prefix, ['scratch', ...SHORTHAND_KINDS])
  report(ctx, `expected a base: ${SHORTHANDS.map((f) => `"${f}"`).join(', ')} or a mapping`, s, {
    hint: near ?? 'for example base: scratch, or base: {debian: {suite: bookworm}}',
  })
  return { kind: 'scratch' }
}

const SHORTHAND_PATTERN =
  '^(scratch|debian:[a-z0-9][a-z0-9.-]*|image:[a-z0-9][a-z0-9-]{0,62}|oci:.+|rootfs:.+)$'
const baseInput = z.union([z.string().meta({ pattern: SHORTHAND_PATTERN }), objectForms], {
  error: 'expected a base: "scratch", "debian:SUITE", "image:NAME", "oci:PATH", "rootfs:PATH" or a mapping',
})

/**
 * Where an image starts: `scratch`, a Debian bootstrap, another image of this spec, a local OCI layout
 * or a rootfs tarball, as a string shorthand or a mapping with exactly one of debian/image/oci/rootfs.
 */
export const baseSchema = z
  .preprocess((raw: z.input<typeof baseInput>, ctx) => {
    checkExactlyOne(ctx, raw, BASE_KINDS, 'a base')
    return raw
  }, baseInput)
  .transform((b, ctx): BaseSource => {
    if (typeof b === 'string') return parseShorthand(b, ctx)
    if ('debian' in b) {
      const d = b.debian
      if (typeof d === 'string')
        return { kind: 'debian', suite: d, variant: 'essential', include: [], components: ['main'] }
      return { kind: 'debian', ...d }
    }
    if ('image' in b) return { kind: 'image', image: b.image, ...(b.version ? { version: b.version } : {}) }
    if ('oci' in b) return { kind: 'oci', path: b.oci, ...(b.ref ? { ref: b.ref } : {}) }
    if ('registry' in b) {
      const parsed = parseImageRef(b.registry)
      if ('message' in parsed) {
        report(ctx, parsed.message, '', { path: ['registry'], hint: parsed.hint })
        return { kind: 'scratch' }
      }
      return { kind: 'registry', ref: formatImageRef(parsed) }
    }
    return { kind: 'rootfs', path: b.rootfs }
  })
  .describe(
    'Where the image starts. `scratch`; `debian:SUITE`; `image:NAME` (another image here); `oci:PATH`; `rootfs:PATH`; or a mapping with exactly one of `debian`, `image` (+ `version`), `oci` (+ `ref`), `registry`, `rootfs`. Default `scratch`.',
  )
