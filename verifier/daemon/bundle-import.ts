/**
 * One bundle on one medium: verified where it lies (signatures and statement, before any byte of a volume is
 * copied), then imported straight from the medium when it is whole there, or else its volumes on this medium are
 * copied into the bundle's assembly (assembly.ts) and it is imported from there once every volume is in. Each
 * outcome (imported, refused, interrupted by the medium going away, waiting for more volumes) is audited, logged and
 * published.
 */
import { asEcluseError, EcluseError } from '../../sneakernet/errors.js';
import { appendAudit } from '../audit.js';
import { pushPromoted, runImport, verifyBundleOnMedium, type BundleOnMedium } from '../import.js';
import { recordRefusal, refusedBundle, withRecovery } from '../refusal.js';
import type { Site } from '../site.js';
import { copyVolume, createAssembly, findAssembly, removeAssembly, waitingMessage, type Assembly } from './assembly.js';
import type { DaemonLog } from './log.js';
import { short, type Medium } from './medium.js';
import type { StatusPublisher } from './status-publisher.js';
import { subjectName } from '../../sneakernet/subject.js';

export interface BundleImportOptions {
  site: Site;
  log: DaemonLog;
  status: StatusPublisher;
  /** Read media at most this fast (bytes per second). */
  readRate?: number;
  /** Where écluse's own package is handed over (docs/FORMAT.md 4.10). */
  updateSpool?: string;
  /** Called after each import: bundles that waited for it may go now. */
  onImported: () => void;
}

export class BundleImporter {
  constructor(private readonly o: BundleImportOptions) {}

  private audit(e: Parameters<typeof appendAudit>[1]): void {
    appendAudit(this.o.site.db, e);
  }

  /**
   * `audited`: the refusal was audited where it was found (verification and import audit their own); otherwise it is
   * audited here, by the same writer, naming the bundle the statement verified as.
   */
  private onRefused(m: Medium, id: string, err: EcluseError, audited: true | BundleOnMedium): void {
    if (audited !== true) {
      const p = audited.statement.predicate;
      const bundle = refusedBundle(err, { bundleId: id, station: p.station, sequence: p.sequence });
      withRecovery(this.o.site, err, bundle);
      recordRefusal(this.o.site, err, bundle, m.mount.mountPoint);
    }
    if (err.code === 'E_SEQUENCE_GAP') m.deferred.push(id);
    m.outcomes.set(id, err.code === 'E_SEQUENCE_GAP' ? 'deferred' : 'refused');
    m.refusedCode = err.code;
    m.status.message = `bundle ${short(id)} refused: ${err.line()}`;
    this.o.status.setLast('refused', id, err, m);
    this.o.log({
      event: 'import.refused',
      level: 'warning',
      bundle: id,
      code: err.code,
      artifact: typeof err.context.artifact === 'string' ? err.context.artifact : null,
      volume: typeof err.context.volume === 'string' ? err.context.volume : null,
      media: m.mount.mountPoint,
      message: err.line(),
    });
  }

  private onInterrupted(m: Medium, id: string, err: EcluseError, volume: string | null): void {
    m.outcomes.set(id, 'interrupted');
    this.audit({
      kind: 'import.interrupted',
      outcome: 'info',
      code: err.code,
      message: err.line(),
      bundleId: id,
      media: m.mount.mountPoint,
      details: { volume },
    });
    this.o.status.setLast('interrupted', id, err, m);
    this.o.log({
      event: 'import.interrupted',
      level: 'warning',
      bundle: id,
      code: err.code,
      media: m.mount.mountPoint,
      message: `${err.line()}${volume ? `; ${volume} will be read again from its start` : ''}`,
    });
  }

  async handleBundle(m: Medium, id: string): Promise<void> {
    const media = m.mount.mountPoint;
    const home = this.o.site.home.root;
    let b: BundleOnMedium;
    try {
      b = await verifyBundleOnMedium(this.o.site, media, id, { auditMedia: media });
    } catch (e) {
      this.onRefused(m, id, asEcluseError(e), true);
      return;
    }
    const p = b.statement.predicate;
    let assembly = findAssembly(home, id);
    if (assembly && assembly.meta.statementSha256 !== b.bundle.statementSha256) {
      this.onRefused(
        m,
        id,
        new EcluseError('E_FORMAT', `bundle ${id} on this medium carries another statement than the volumes kept`, {
          check: 'statement',
        }),
        b,
      );
      return;
    }
    // Every volume on this medium (one, or a bundle split to a size smaller than the medium): imported from the medium
    // itself, read once, as `ecluse import` reads it. The assembly (a verified copy of each volume, then the import
    // from the copy: every byte written twice) is for a bundle spread over several media.
    if (!assembly && b.present.length === p.volumes.length) {
      await this.importFrom(m, media, b, null);
      return;
    }
    assembly ??= createAssembly(home, b);
    const a: Assembly = assembly;
    if (!(await this.collectVolumes(m, b, a))) return;
    if (a.missing.length > 0) {
      const message = waitingMessage(a);
      m.status.message = `${message}; this medium may be removed`;
      m.outcomes.set(id, 'waiting');
      this.audit({
        kind: 'bundle.waiting',
        outcome: 'info',
        message,
        bundleId: id,
        station: p.station,
        media,
        details: { have: a.have, missing: a.missing },
      });
      this.o.log({ event: 'bundle.waiting', bundle: id, media, missing: a.missing, message });
      this.o.status.write(true);
      return;
    }
    await this.importFrom(m, a.root, b, a);
  }

  /** Copies the volumes on this medium that the assembly lacks; false when a copy failed (reported). */
  private async collectVolumes(m: Medium, b: BundleOnMedium, a: Assembly): Promise<boolean> {
    const media = m.mount.mountPoint;
    const id = b.bundle.id;
    const p = b.statement.predicate;
    for (const v of p.volumes) {
      if (!b.present.includes(v.name) || a.have.includes(v.name)) continue;
      const index = p.volumes.indexOf(v) + 1;
      this.o.status.progress = {
        bundle: id,
        station: p.station,
        sequence: p.sequence,
        phase: 'copying',
        mountPoint: media,
        volume: v.name,
        bytesDone: 0,
        bytesTotal: v.size,
        percent: 0,
      };
      m.status.message = `copying volume ${index} of ${p.volumes.length}`;
      this.o.status.write(true);
      try {
        await copyVolume(a, b.files.paths.volumes, v, {
          signal: m.abort.signal,
          rate: this.o.readRate,
          onProgress: (n) => this.o.status.advance(n),
        });
      } catch (e) {
        const err = asEcluseError(e);
        this.o.status.progress = null;
        if (err.code === 'E_MEDIA_REMOVED') this.onInterrupted(m, id, err, v.name);
        else this.onRefused(m, id, err, b);
        return false;
      }
      a.have.push(v.name);
      a.missing = a.missing.filter((x) => x !== v.name);
      this.audit({
        kind: 'volume.collected',
        outcome: 'info',
        message: `volume ${index} of ${p.volumes.length} (${v.name}) of bundle ${p.station} #${p.sequence} copied and verified`,
        bundleId: id,
        station: p.station,
        media,
        details: { volume: v.name, sha256: v.sha256, size: v.size },
      });
      this.o.log({
        event: 'volume.collected',
        bundle: id,
        media,
        volume: v.name,
        message: `${v.name} verified and kept`,
      });
    }
    this.o.status.progress = null;
    return true;
  }

  /** The ordinary pipeline, from the medium itself (one volume) or from the assembled copy. */
  private async importFrom(m: Medium, from: string, b: BundleOnMedium, a: Assembly | null): Promise<void> {
    const id = b.bundle.id;
    const p = b.statement.predicate;
    const status = this.o.status;
    status.progress = {
      bundle: id,
      station: p.station,
      sequence: p.sequence,
      phase: 'importing',
      mountPoint: m.mount.mountPoint,
      volume: a ? null : (p.volumes[0]?.name ?? null),
      bytesDone: 0,
      bytesTotal: b.bundle.bytes,
      percent: 0,
    };
    m.status.message = `importing bundle ${p.station} #${p.sequence}`;
    status.write(true);
    this.o.log({ event: 'import.started', bundle: id, media: m.mount.mountPoint, message: m.status.message });
    try {
      const r = await runImport(this.o.site, {
        media: from,
        bundleId: id,
        mode: 'import',
        auditMedia: m.mount.mountPoint,
        ...(this.o.updateSpool ? { updateSpool: this.o.updateSpool } : {}),
        // The assembled copy is ours: pulling the last stick no longer matters.
        ...(a ? {} : { signal: m.abort.signal, readRate: this.o.readRate }),
        onProgress: (done) => {
          if (status.progress) status.progress.bytesDone = done;
          status.advance(0);
        },
      });
      if (a) removeAssembly(a);
      const here = r.alreadyHere.map((x) => `${x.name} ${x.version} already here`);
      const message = `bundle ${p.station} #${p.sequence} imported${r.chain.position === 'late' ? ' late' : ''}: ${[...r.images.map((i) => `${i.name} ${i.version}`), ...r.containerImages.map((c) => `${c.name} ${c.version} (${c.repository}:${c.tag})`), ...(r.handedOver ? [`ecluse ${r.handedOver.version} for the installer`] : []), ...here].join(', ')}`;
      m.status.message = `${message}; the media may be removed`;
      status.setLast('accepted', id, null, m, message);
      m.outcomes.set(id, 'accepted');
      for (const i of r.images) {
        this.o.log({
          event: 'image.promoted',
          bundle: id,
          artifact: subjectName(i),
          image: i.id,
          message: `${i.name} ${i.version} is image ${i.id}`,
        });
      }
      for (const c of r.containerImages) {
        this.o.log({
          event: 'container-image.promoted',
          bundle: id,
          artifact: `${c.name}@${c.version}`,
          message: `${c.name} ${c.version} is served as ${c.repository}:${c.tag} (${c.digest})`,
        });
      }
      if (r.handedOver) {
        this.o.log({
          event: 'update.handed-over',
          bundle: id,
          artifact: `${r.handedOver.name}@${r.handedOver.version}`,
          message: `ecluse ${r.handedOver.version} handed over to the installer as ${r.handedOver.deb}`,
        });
      }
      if (r.handOverError) {
        this.o.log({
          event: 'update.hand-over-failed',
          level: 'warning',
          bundle: id,
          code: r.handOverError.code,
          message: `${r.handOverError.code}: ${r.handOverError.message}`,
        });
      }
      this.o.log({ event: 'import.accepted', bundle: id, media: m.mount.mountPoint, sequence: p.sequence, message });
      this.o.onImported();
      // The site's own Glance, after the commit: each result is audited; a failure is logged, never a refusal.
      for (const t of await pushPromoted(this.o.site, r)) {
        if (t.outcome === 'failed') {
          this.o.log({
            event: 'target.failed',
            level: 'warning',
            bundle: id,
            image: t.imageId,
            code: 'E_TARGET',
            message: `E_TARGET: push of image ${t.imageId} to ${t.target} failed: ${t.error ?? ''}; retry with "ecluse target push"`,
          });
        }
      }
    } catch (e) {
      const err = asEcluseError(e);
      if (err.code === 'E_MEDIA_REMOVED') {
        this.onInterrupted(m, id, err, p.volumes[0]?.name ?? null);
        return;
      }
      // The whole bundle was refused: what was kept of it is of no use.
      if (a) removeAssembly(a);
      this.onRefused(m, id, err, true);
    } finally {
      status.progress = null;
    }
  }
}
