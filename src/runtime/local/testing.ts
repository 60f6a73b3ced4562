import { rm } from 'node:fs/promises'
import type { GrailHome } from '../../home.js'
import type { OciStore } from '../../oci/store.js'
import type { InstanceSpec } from '../types.js'
import { createInstance } from './create.js'
import { instancePaths } from './layout.js'

/**
 * Leaves an instance as a `create` killed at `point` would: its record written and (with 'mount') its
 * overlay mounted, but no runc container; 'unrecorded': mounted, with its record lost (a bundle nothing
 * attributes, which only `reconcile` removes). For crash-recovery tests.
 */
export async function createCrashed(
  home: GrailHome,
  store: OciStore,
  spec: InstanceSpec,
  point: 'record' | 'mount' | 'unrecorded',
): Promise<void> {
  await createInstance(home, store, spec, { crashAfter: point === 'unrecorded' ? 'mount' : point })
  if (point === 'unrecorded') await rm(instancePaths(home, spec.id).record)
}
