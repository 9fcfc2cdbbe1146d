/** Progress bars on stderr (a bar per district at work and one for the total), or nothing when not wanted. */
import cliProgress from 'cli-progress';

export interface Progress {
  startDistrict(slug: string, totalRows: number): void;
  addRows(slug: string, rows: number): void;
  finishDistrict(slug: string): void;
  stop(): void;
}

export const silentProgress: Progress = { startDistrict() {}, addRows() {}, finishDistrict() {}, stop() {} };

export function barsProgress(totalRows: number): Progress {
  const format = '{label} {bar} {value}/{total} rows  {speed} rows/s  {eta_formatted}';
  const multi = new cliProgress.MultiBar(
    { format, stream: process.stderr, hideCursor: true, clearOnComplete: false, etaBuffer: 50 },
    cliProgress.Presets.shades_classic,
  );
  const started = performance.now();
  let done = 0;
  const total = multi.create(totalRows, 0, { label: 'total'.padEnd(28), speed: 0 });
  const bars = new Map<string, { bar: cliProgress.SingleBar; rows: number; started: number }>();
  const speed = (rows: number, since: number) => Math.round(rows / Math.max((performance.now() - since) / 1000, 0.001));
  return {
    startDistrict(slug, totalRows) {
      bars.set(slug, {
        bar: multi.create(totalRows, 0, { label: slug.slice(0, 28).padEnd(28), speed: 0 }),
        rows: 0,
        started: performance.now(),
      });
    },
    addRows(slug, rows) {
      const entry = bars.get(slug);
      done += rows;
      total.update(done, { speed: speed(done, started) });
      if (!entry) return;
      entry.rows += rows;
      entry.bar.update(entry.rows, { speed: speed(entry.rows, entry.started) });
    },
    finishDistrict(slug) {
      const entry = bars.get(slug);
      if (entry) multi.remove(entry.bar);
      bars.delete(slug);
    },
    stop() {
      multi.stop();
    },
  };
}
