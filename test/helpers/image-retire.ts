/**
 * What `ecluse image list --json` prints: the shape the retirement tests (test/e2e/image-retire.test.ts,
 * test/e2e/image-retire-deletion.test.ts) read.
 */
export interface Listed {
  artifacts: Array<{
    name: string;
    keepNewest: number | null;
    images: Array<{ id: string; version: string; listed: boolean }>;
  }>;
  retired: Array<{ name: string; version: string; reason: string }>;
}
