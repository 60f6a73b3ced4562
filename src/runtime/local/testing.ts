import type { GrailHome } from '../../home.js'
import type { OciStore } from '../../oci/store.js'
import type { InstanceSpec } from '../types.js'
import { createInstance } from './create.js'

/**
 * Leaves an instance as a `create` killed at `point` would: its record written and (with 'mount') its
 * overlay mounted, but no runc container. For crash-recovery tests.
 */
export function createCrashed(
  home: GrailHome,
  store: OciStore,
  spec: InstanceSpec,
  point: 'record' | 'mount',
): Promise<void> {
  return createInstance(home, store, spec, { crashAfter: point })
}
