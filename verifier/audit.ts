/**
 * Appends audit events (see verifier/audit/log.ts): every caller goes through `appendAudit`, which also makes each
 * event a leaf of the tamper-evident Merkle log and signs a checkpoint after every import decision.
 */
export { appendAudit, CHECKPOINT_KINDS, type AuditEvent, type AuditOutcome } from './audit/log.js';
