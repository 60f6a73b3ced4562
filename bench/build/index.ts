// Image builds of examples/hello, Grail against `docker build` (BuildKit, Debian's dockerd 20.10) of the
// equivalent Dockerfile on the same Debian base, in the same run: cold build, no-op rebuild, one-file
// change; whether each tool's output is reproducible; ratios against the targets: the no-op `grail build`
// CLI ≤ 1.0× `docker build` cached and `grail --help` ≤ 1.25× `node -e ""` (start-up cost, each pair
// measured alternately in the same run), the engine's no-op in-process ≤ 0.1× and a one-file change
// ≤ 0.5× docker's time for the same rebuild.
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runCommand } from '../../src/util/exec.js'
import { mmdebstrapCommand, runBuild } from '../../src/build/index.js'
import { resolveHome } from '../../src/home.js'
import { loadProject } from '../../src/spec/index.js'
import type { Dockerd } from '../../test/helpers/dockerd.js'
import { startDockerd } from '../../test/helpers/dockerd.js'
import { GRAIL_BIN, REPO } from '../../test/helpers/project.js'
import { type Measurement, measure, ms, printTable, summarize, writeResults } from '../lib.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 7)

/** Ratio targets (grail ÷ peer, medians): met when the ratio is at most this. */
const TARGETS = { help: 1.25, noop: 1.0, oneFile: 0.5, engineNoop: 0.1, engineOneFile: 0.5 }

const DOCKERFILE = `FROM grail-bench/debian-essential-busybox
RUN busybox --install -s /usr/local/bin
COPY site/ /srv/www/
ENV PORT=8080
EXPOSE 8080
CMD ["/bin/sh", "-c", "exec busybox httpd -f -v -p \\"0.0.0.0:\${PORT}\\" -h /srv/www"]
`

async function grailBuild(dir: string): Promise<string> {
  const res = await runCommand({ file: process.execPath, args: [GRAIL_BIN, '--json', 'build'], cwd: dir })
  const out = JSON.parse(res.stdout.toString()) as { images: Array<{ digest: string }> }
  return out.images[0]?.digest ?? ''
}

async function dockerBuild(d: Dockerd, ctx: string, extra: string[] = []): Promise<string> {
  const res = await d.docker(
    ['build', '--quiet', '--network=none', ...extra, '--tag', 'grail-bench/hello:latest', ctx],
    {
      env: { DOCKER_BUILDKIT: '1' },
    },
  )
  if (res.code !== 0) throw new Error(`docker build failed: ${res.stderr}`)
  return res.stdout.trim()
}

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now()
  const value = await fn()
  return { ms: performance.now() - t0, value }
}

/**
 * Times `a` and `b` `runs` times each, taking turns (one untimed round first), so that a machine getting
 * busier or quieter during the run weighs on both the same.
 */
async function alternate(
  a: () => Promise<unknown>,
  b: () => Promise<unknown>,
  runs: number,
): Promise<[Measurement, Measurement]> {
  const sa: number[] = []
  const sb: number[] = []
  for (let i = -1; i < runs; i++) {
    const ta = await timed(a)
    const tb = await timed(b)
    if (i >= 0) {
      sa.push(ta.ms)
      sb.push(tb.ms)
    }
  }
  return [summarize(sa), summarize(sb)]
}

async function copyHello(dest: string): Promise<string> {
  await cp(join(REPO, 'examples/hello'), dest, { recursive: true, filter: (s) => !s.includes('.grail') })
  return dest
}

export async function run(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'grail-bench-build-'))
  const d = await startDockerd({ name: 'bb' })
  try {
    // --- cold builds (from nothing), twice each, to see whether the output is reproducible ---
    const grailA = await copyHello(join(work, 'grail-a'))
    const grailB = await copyHello(join(work, 'grail-b'))
    const gCold1 = await timed(() => grailBuild(grailA))
    const gCold2 = await timed(() => grailBuild(grailB))

    // docker cannot bootstrap Debian: the same mmdebstrap run makes its base, imported as an image; that
    // time counts towards docker's cold build so both start from nothing
    const base = {
      kind: 'debian' as const,
      suite: 'bookworm',
      variant: 'essential' as const,
      include: ['busybox'],
      components: ['main'],
    }
    const dockerCtx = await copyHello(join(work, 'docker'))
    await writeFile(join(dockerCtx, 'Dockerfile'), DOCKERFILE)
    await writeFile(join(dockerCtx, '.dockerignore'), 'grail.yaml\n.grail\n')
    const dCold1 = await timed(async () => {
      const tar = join(work, 'base.tar')
      await runCommand(mmdebstrapCommand(base, tar, 1))
      const imp = await d.docker(['import', tar, 'grail-bench/debian-essential-busybox'])
      if (imp.code !== 0) throw new Error(imp.stderr)
      return dockerBuild(d, dockerCtx)
    })
    await d.docker(['builder', 'prune', '--all', '--force'])
    const dCold2 = await timed(() => dockerBuild(d, dockerCtx, ['--no-cache']))

    // --- start-up: `grail --help` against Node starting and doing nothing, alternately ---
    const [nodeStart, gHelp] = await alternate(
      () => runCommand({ file: process.execPath, args: ['-e', ''] }),
      () => runCommand({ file: process.execPath, args: [GRAIL_BIN, '--help'] }),
      RUNS * 3,
    )

    // --- no-op rebuilds, alternately ---
    const [gNoop, dNoop] = await alternate(
      () => grailBuild(grailA),
      () => dockerBuild(d, dockerCtx),
      RUNS,
    )

    // --- one file of the site changed before each build ---
    const page = (dir: string, i: number) => writeFile(join(dir, 'site/index.html'), `<h1>edit ${i}</h1>\n`)
    const gSamples: number[] = []
    const dSamples: number[] = []
    for (let i = -1; i < RUNS; i++) {
      await page(grailA, i)
      const g = await timed(() => grailBuild(grailA))
      await page(dockerCtx, i)
      const k = await timed(() => dockerBuild(d, dockerCtx))
      if (i >= 0) {
        gSamples.push(g.ms)
        dSamples.push(k.ms)
      }
    }
    const gEdit = summarize(gSamples)
    const dEdit = summarize(dSamples)

    // the engine's own cost, without starting a process: what `grail serve` will pay per build
    const project = await loadProject(grailA)
    const home = resolveHome(grailA)
    const eNoop = await measure(() => runBuild({ project, home }), { runs: RUNS, warmup: 1 })
    const eEdit = await measure(
      async (i) => {
        await page(grailA, 1000 + i)
        await runBuild({ project, home })
      },
      { runs: RUNS, warmup: 1 },
    )

    const ratio = (g: Measurement, k: Measurement) => g.median / k.median
    const target = (r: number, t: number) => `≤ ${t} ${r <= t ? 'met' : 'MISSED'}`
    const rows = [
      {
        scenario: 'grail --help vs node -e "" (start-up, median)',
        grail: ms(gHelp.median),
        docker: `node ${ms(nodeStart.median)}`,
        ratio: ratio(gHelp, nodeStart).toFixed(3),
        target: target(ratio(gHelp, nodeStart), TARGETS.help),
      },
      {
        scenario: 'cold build (from nothing)',
        grail: ms(gCold1.ms),
        docker: ms(dCold1.ms),
        ratio: (gCold1.ms / dCold1.ms).toFixed(2),
        target: '-',
      },
      {
        scenario: 'no-op rebuild, grail CLI vs docker build cached (median)',
        grail: ms(gNoop.median),
        docker: ms(dNoop.median),
        ratio: ratio(gNoop, dNoop).toFixed(3),
        target: target(ratio(gNoop, dNoop), TARGETS.noop),
      },
      {
        scenario: 'one-file change (median)',
        grail: ms(gEdit.median),
        docker: ms(dEdit.median),
        ratio: ratio(gEdit, dEdit).toFixed(3),
        target: target(ratio(gEdit, dEdit), TARGETS.oneFile),
      },
      {
        scenario: 'no-op rebuild, engine in-process',
        grail: ms(eNoop.median),
        docker: ms(dNoop.median),
        ratio: ratio(eNoop, dNoop).toFixed(3),
        target: target(ratio(eNoop, dNoop), TARGETS.engineNoop),
      },
      {
        scenario: 'one-file change, engine in-process',
        grail: ms(eEdit.median),
        docker: ms(dEdit.median),
        ratio: ratio(eEdit, dEdit).toFixed(3),
        target: target(ratio(eEdit, dEdit), TARGETS.engineOneFile),
      },
      {
        scenario: 'reproducible (2 cold builds)',
        grail: gCold1.value === gCold2.value ? 'yes' : 'no',
        docker: dCold1.value === dCold2.value ? 'yes' : 'no',
        ratio: '-',
        target: '-',
      },
    ]
    printTable('bench/build: examples/hello, grail build vs docker build (BuildKit)', rows)
    const path = await writeResults('build', {
      runs: RUNS,
      grail: {
        cold: [gCold1.ms, gCold2.ms],
        digests: [gCold1.value, gCold2.value],
        noop: gNoop,
        oneFile: gEdit,
        help: gHelp,
        nodeStartup: nodeStart,
      },
      docker: {
        version: (await d.docker(['version', '--format', '{{.Server.Version}}'])).stdout.trim(),
        cold: [dCold1.ms, dCold2.ms],
        imageIds: [dCold1.value, dCold2.value],
        noop: dNoop,
        oneFile: dEdit,
      },
      ratios: {
        help: ratio(gHelp, nodeStart),
        noop: ratio(gNoop, dNoop),
        oneFile: ratio(gEdit, dEdit),
        engineNoop: ratio(eNoop, dNoop),
        engineOneFile: ratio(eEdit, dEdit),
        cold: gCold1.ms / dCold1.ms,
      },
      targets: TARGETS,
      met: {
        help: ratio(gHelp, nodeStart) <= TARGETS.help,
        noop: ratio(gNoop, dNoop) <= TARGETS.noop,
        oneFile: ratio(gEdit, dEdit) <= TARGETS.oneFile,
        engineNoop: ratio(eNoop, dNoop) <= TARGETS.engineNoop,
        engineOneFile: ratio(eEdit, dEdit) <= TARGETS.engineOneFile,
      },
      notes: [
        "docker's cold build includes the mmdebstrap bootstrap and `docker import` of its base; grail's includes its own bootstrap",
        'docker reproducibility compares image ids of two --no-cache builds',
        'CLI rows include starting Node.js (grail.nodeStartup: `node -e ""` alone); engine rows call runBuild() in this process',
        'help is `grail --help` against `node -e ""`, and noop the `grail build` CLI against `docker build` cached: each pair timed taking turns',
      ],
    })
    console.log(`results: ${path}`)
  } finally {
    await d.stop()
    await rm(work, { recursive: true, force: true })
  }
}
