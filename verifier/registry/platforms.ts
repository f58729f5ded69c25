/** Platforms as operators write them: `os/architecture[/variant]` (`linux/arm64/v8`), as podman and skopeo do. */
import type { ImagePlatform } from './images.js';

export function platformName(p: ImagePlatform): string {
  return [p.os, p.architecture, p.variant].filter((x) => x !== undefined && x !== '').join('/');
}
