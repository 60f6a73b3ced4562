// Image builds of examples/hello, Grail against `docker build` (BuildKit, Debian's dockerd 20.10) of the
// equivalent Dockerfile on the same Debian base, in the same run: cold build, no-op rebuild, one-file
// change; whether each tool's output is reproducible; ratios against the targets (no-op ≤ 0.1×,
// one-file change ≤ 0.5× docker's time for the same rebuild).
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

    const nodeStart = await measure(() => runCommand({ file: process.execPath, args: ['-e', ''] }), {
      runs: RUNS,
    })

    // --- no-op rebuilds ---
    const gNoop = await measure(() => grailBuild(grailA), { runs: RUNS, warmup: 1 })
    const dNoop = await measure(() => dockerBuild(d, dockerCtx), { runs: RUNS, warmup: 1 })

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
    const rows = [
      {
        scenario: 'node -e "" (process start only)',
        grail: ms(nodeStart.median),
        docker: '-',
        ratio: '-',
        target: '-',
      },
      {
        scenario: 'cold build (from nothing)',
        grail: ms(gCold1.ms),
        docker: ms(dCold1.ms),
        ratio: (gCold1.ms / dCold1.ms).toFixed(2),
        target: '-',
      },
      {
        scenario: 'no-op rebuild (median)',
        grail: ms(gNoop.median),
        docker: ms(dNoop.median),
        ratio: ratio(gNoop, dNoop).toFixed(3),
        target: `≤ 0.1 ${ratio(gNoop, dNoop) <= 0.1 ? 'met' : 'MISSED'}`,
      },
      {
        scenario: 'one-file change (median)',
        grail: ms(gEdit.median),
        docker: ms(dEdit.median),
        ratio: ratio(gEdit, dEdit).toFixed(3),
        target: `≤ 0.5 ${ratio(gEdit, dEdit) <= 0.5 ? 'met' : 'MISSED'}`,
      },
      {
        scenario: 'no-op rebuild, engine in-process',
        grail: ms(eNoop.median),
        docker: ms(dNoop.median),
        ratio: ratio(eNoop, dNoop).toFixed(3),
        target: `≤ 0.1 ${ratio(eNoop, dNoop) <= 0.1 ? 'met' : 'MISSED'}`,
      },
      {
        scenario: 'one-file change, engine in-process',
        grail: ms(eEdit.median),
        docker: ms(dEdit.median),
        ratio: ratio(eEdit, dEdit).toFixed(3),
        target: `≤ 0.5 ${ratio(eEdit, dEdit) <= 0.5 ? 'met' : 'MISSED'}`,
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
      },
      docker: {
        version: (await d.docker(['version', '--format', '{{.Server.Version}}'])).stdout.trim(),
        cold: [dCold1.ms, dCold2.ms],
        imageIds: [dCold1.value, dCold2.value],
        noop: dNoop,
        oneFile: dEdit,
      },
      ratios: {
        noop: ratio(gNoop, dNoop),
        oneFile: ratio(gEdit, dEdit),
        engineNoop: ratio(eNoop, dNoop),
        engineOneFile: ratio(eEdit, dEdit),
        cold: gCold1.ms / dCold1.ms,
      },
      targets: { noop: 0.1, oneFile: 0.5 },
      notes: [
        "docker's cold build includes the mmdebstrap bootstrap and `docker import` of its base; grail's includes its own bootstrap",
        'docker reproducibility compares image ids of two --no-cache builds',
        'CLI rows include starting Node.js (see grail.nodeStartup: `node -e ""` alone); engine rows call runBuild() in this process',
      ],
    })
    console.log(`results: ${path}`)
  } finally {
    await d.stop()
    await rm(work, { recursive: true, force: true })
  }
}
