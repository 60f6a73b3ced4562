import { loadProject } from './index.js'
try {
const p = await loadProject('/tmp/tsconf')
console.log(JSON.stringify(p).slice(0, 300))
} catch (e: any) { console.log(e.message, e.details, e.cause) }
