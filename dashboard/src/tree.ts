import type { ListedImage } from '../../src/engine/images.js'

/** An image version with the versions built on it. */
export interface TreeNode {
  image: ListedImage
  children: TreeNode[]
}

/**
 * The ancestry forest of the catalog, as `grail images --tree` prints it: roots are versions whose
 * parent is not in the catalog, children sit under the version they were built on; by name, then version.
 */
export function ancestry(images: ListedImage[]): TreeNode[] {
  const sorted = [...images].sort((a, b) =>
    a.name === b.name ? a.version - b.version : a.name < b.name ? -1 : 1,
  )
  const nodes = new Map<string, TreeNode>(sorted.map((i) => [i.digest, { image: i, children: [] }]))
  const roots: TreeNode[] = []
  for (const i of sorted) {
    const node = nodes.get(i.digest) as TreeNode
    const parent =
      i.parentDigest !== null && i.parentDigest !== i.digest ? nodes.get(i.parentDigest) : undefined
    if (parent) parent.children.push(node)
    else roots.push(node)
  }
  return roots
}
