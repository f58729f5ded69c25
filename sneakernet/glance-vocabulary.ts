/**
 * The Glance vocabulary both stations speak (glance-compat.md): the disk and container formats, the core attributes
 * of an image record, and the rule for an extra property's name. The export station reads an outside Glance with it
 * (glance feeds) and writes statements with it; the import station serves its Glance API with it. It lives here, in
 * the shared core, so that `relay/` and `verifier/` never need to import each other.
 */
import { z } from 'zod';
import { LIMITS } from './limits.js';

/** Disk and container formats Glance knows (glance-compat.md). */
export const DISK_FORMATS = [
  'ami',
  'ari',
  'aki',
  'vhd',
  'vhdx',
  'vmdk',
  'raw',
  'qcow2',
  'vdi',
  'iso',
  'ploop',
] as const;
export const CONTAINER_FORMATS = ['ami', 'ari', 'aki', 'bare', 'ovf', 'ova', 'docker', 'compressed'] as const;

/** A Glance property name as the statement carries it (also what feeds may name and copy). */
export const propertyKey = z
  .string()
  .min(1)
  .max(LIMITS.propertyKeyLength)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.:-]*$/, 'letters, digits and _ . : - only');

/** Core attribute names of an image record: an extra property can never shadow one of these. */
export const CORE_ATTRIBUTES: ReadonlySet<string> = new Set([
  'id',
  'name',
  'status',
  'visibility',
  'protected',
  'os_hidden',
  'checksum',
  'os_hash_algo',
  'os_hash_value',
  'size',
  'virtual_size',
  'container_format',
  'disk_format',
  'min_disk',
  'min_ram',
  'owner',
  'created_at',
  'updated_at',
  'tags',
  'self',
  'file',
  'schema',
  'direct_url',
  'locations',
  'stores',
  'properties',
  'deleted',
  'deleted_at',
]);
