/**
 * The import station's home folder (`--home` or `ECLUSE_HOME`):
 *   ecluse.sqlite          catalog, monotonic state, audit
 *   trust/                 the pinned trust anchors installed by `ecluse site init`
 *   store/images/<file>    promoted image data, referenced by the catalog
 *   store/staging/         private staging of imports in progress (mode 0700); never served
 */
import path from 'node:path';

export interface ImportHome {
  root: string;
  trust: string;
  images: string;
  staging: string;
}

export function importHome(root: string): ImportHome {
  return {
    root,
    trust: path.join(root, 'trust'),
    images: path.join(root, 'store', 'images'),
    staging: path.join(root, 'store', 'staging'),
  };
}
