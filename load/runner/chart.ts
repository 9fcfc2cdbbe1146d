/** SVGs a person can open in a browser: a run's latency over time (p50/p95/p99) and every district's p95; the bench's capacity curve. */
import type { RunReport } from './report.ts';

const WIDTH = 960;
const PANEL = 340;
const MARGIN = { left: 64, right: 24, top: 48, bottom: 44 };
const COLORS = { p50: '#2b6cb0', p95: '#dd6b20', p99: '#c53030', bar: '#4a5568', limit: '#c53030', grid: '#e2e8f0', text: '#1a202c' };

const escapeXml = (text: string) => text.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(value: number): number {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((v) => v >= value)!;
}

function panel(
  top: number,
  title: string,
  yMax: number,
  xLabel: string,
  body: (x0: number, y: (v: number) => number, plotWidth: number) => string,
): string {
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = PANEL - MARGIN.top - MARGIN.bottom;
  const y = (v: number) => top + MARGIN.top + plotHeight - (Math.min(v, yMax) / yMax) * plotHeight;
  const ticks = Array.from({ length: 6 }, (_, i) => (yMax * i) / 5);
  return [
    `<text x="${MARGIN.left}" y="${top + 28}" font-size="16" font-weight="bold" fill="${COLORS.text}">${escapeXml(title)}</text>`,
    ...ticks.map(
      (t) =>
        `<line x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${y(t).toFixed(1)}" y2="${y(t).toFixed(1)}" stroke="${COLORS.grid}"/>` +
        `<text x="${MARGIN.left - 8}" y="${(y(t) + 4).toFixed(1)}" font-size="11" text-anchor="end" fill="${COLORS.text}">${Number(t.toPrecision(3))}</text>`,
    ),
    `<text x="16" y="${top + MARGIN.top + plotHeight / 2}" font-size="12" fill="${COLORS.text}" transform="rotate(-90 16 ${top + MARGIN.top + plotHeight / 2})" text-anchor="middle">ms</text>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${top + PANEL - 10}" font-size="12" text-anchor="middle" fill="${COLORS.text}">${escapeXml(xLabel)}</text>`,
    body(MARGIN.left, y, plotWidth),
  ].join('\n');
}

/** The p50 / p95 / p99 colour key, three entries from (x, y). */
const percentileLegend = (x: number, y: number) =>
  (['p50', 'p95', 'p99'] as const)
    .map(
      (key, i) =>
        `<rect x="${x + i * 70}" y="${y + 6}" width="12" height="3" fill="${COLORS[key]}"/><text x="${x + 16 + i * 70}" y="${y + 11}" font-size="11" fill="${COLORS.text}">${key}</text>`,
    )
    .join('');

/** About ten labelled ticks from 0 to `max` along the x axis, below `yAxis`. */
function xTicks(max: number, x: (value: number) => number, yAxis: number): string {
  const every = niceMax(max / 10);
  return Array.from({ length: Math.floor(max / every) + 1 }, (_, i) => i * every)
    .map(
      (value) =>
        `<text x="${x(value).toFixed(1)}" y="${(yAxis + 14).toFixed(1)}" font-size="11" text-anchor="middle" fill="${COLORS.text}">${value}</text>`,
    )
    .join('');
}

const limitLine = (x0: number, width: number, y: number, label: string) =>
  `<line x1="${x0}" x2="${x0 + width}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${COLORS.limit}" stroke-dasharray="6 4"/>` +
  `<text x="${x0 + width}" y="${(y - 4).toFixed(1)}" font-size="11" text-anchor="end" fill="${COLORS.limit}" stroke="#ffffff" stroke-width="3" paint-order="stroke">${escapeXml(label)}</text>`;

export function renderChart(report: RunReport, limits: { p95Ms: number; districtP95Ms?: number }): string {
  const timeline = report.timeline;
  const districtLimit = limits.districtP95Ms ?? limits.p95Ms;
  const timeMax = niceMax(Math.max(limits.p95Ms * 1.2, ...timeline.map((s) => s.p99)));
  const seconds = Math.max(1, ...timeline.map((s) => s.second + 1));
  const over = panel(
    0,
    `${report.scenario}: latency over time (${report.requests} requests, ${report.achievedRate}/s, errors ${report.errors.total})`,
    timeMax,
    'seconds since start',
    (x0, y, width) => {
      const x = (second: number) => x0 + ((second + 0.5) / seconds) * width;
      const line = (key: 'p50' | 'p95' | 'p99') =>
        `<polyline fill="none" stroke="${COLORS[key]}" stroke-width="2" points="${timeline.map((s) => `${x(s.second).toFixed(1)},${y(s[key]).toFixed(1)}`).join(' ')}"/>`;
      const legend = percentileLegend(x0 + 8, y(timeMax));
      const ticks = xTicks(seconds, (second) => x0 + (second / seconds) * width, y(0));
      return [
        line('p50'),
        line('p95'),
        line('p99'),
        limitLine(x0, width, y(limits.p95Ms), `p95 limit ${limits.p95Ms} ms`),
        legend,
        ticks,
      ].join('\n');
    },
  );
  const districts = report.byDistrict;
  const districtMax = niceMax(Math.max(districtLimit * 1.2, ...districts.map((d) => d.p95)));
  const byDistrict = panel(
    PANEL,
    `p95 by district (${districts.length} districts, busiest first)`,
    districtMax,
    'districts, most requests first',
    (x0, y, width) => {
      const step = width / Math.max(1, districts.length);
      const bars = districts.map((d, i) => {
        const top = y(d.p95);
        const title = `${d.district}: p95 ${d.p95} ms, ${d.requests} requests, ${d.errors} errors`;
        return `<rect x="${(x0 + i * step).toFixed(2)}" y="${top.toFixed(1)}" width="${Math.max(0.5, step * 0.8).toFixed(2)}" height="${(y(0) - top).toFixed(1)}" fill="${d.p95 > districtLimit ? COLORS.limit : COLORS.bar}"><title>${escapeXml(title)}</title></rect>`;
      });
      return [...bars, limitLine(x0, width, y(districtLimit), `district p95 limit ${districtLimit} ms`)].join('\n');
    },
  );
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${PANEL * 2}" viewBox="0 0 ${WIDTH} ${PANEL * 2}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    over,
    byDistrict,
    `</svg>`,
    '',
  ].join('\n');
}

export interface CapacityPoint {
  rate: number;
  latencyMs: { p50: number; p95: number; p99: number };
  passed: boolean;
}

/**
 * The capacity curve (bench part 8): latency percentiles against the arrival rate of each step, the p99 limit,
 * the sustained rate and the goal rate marked. Failed steps are drawn hollow.
 */
export function renderCapacityChart(
  points: CapacityPoint[],
  marks: { sustainedRate: number; goalRate: number; p99LimitMs: number; title: string },
): string {
  const rateMax = niceMax(Math.max(marks.goalRate, ...points.map((p) => p.rate)) * 1.05);
  // A saturated step's p99 runs to seconds; beyond 4x the limit the curve is clipped at the top.
  const latencyMax = niceMax(Math.min(marks.p99LimitMs * 4, Math.max(marks.p99LimitMs * 1.2, ...points.map((p) => p.latencyMs.p99))));
  const curve = panel(0, marks.title, latencyMax, 'arrival rate, requests/s (open model)', (x0, y, width) => {
    const x = (rate: number) => x0 + (rate / rateMax) * width;
    const series = (key: 'p50' | 'p95' | 'p99') =>
      `<polyline fill="none" stroke="${COLORS[key]}" stroke-width="2" points="${points.map((p) => `${x(p.rate).toFixed(1)},${y(p.latencyMs[key]).toFixed(1)}`).join(' ')}"/>` +
      points
        .map(
          (p) =>
            `<circle cx="${x(p.rate).toFixed(1)}" cy="${y(p.latencyMs[key]).toFixed(1)}" r="4" fill="${p.passed ? COLORS[key] : '#ffffff'}" stroke="${COLORS[key]}" stroke-width="2"><title>${escapeXml(`${p.rate} req/s: ${key} ${p.latencyMs[key]} ms${p.passed ? '' : ' (step failed)'}`)}</title></circle>`,
        )
        .join('');
    // Labels on two rows, so the goal's and the sustained rate's stay apart when the lines meet.
    const vertical = (rate: number, color: string, label: string, dash: string, row: number) =>
      `<line x1="${x(rate).toFixed(1)}" x2="${x(rate).toFixed(1)}" y1="${y(latencyMax).toFixed(1)}" y2="${y(0).toFixed(1)}" stroke="${color}" stroke-width="2" stroke-dasharray="${dash}"/>` +
      `<text x="${(x(rate) + 4).toFixed(1)}" y="${(y(latencyMax) + 24 + row * 14).toFixed(1)}" font-size="11" fill="${color}" stroke="#ffffff" stroke-width="3" paint-order="stroke">${escapeXml(label)}</text>`;
    // At the right, where the vertical marks' labels (at the low rates) do not reach.
    const legend = percentileLegend(x0 + width - 210, y(latencyMax));
    const ticks = xTicks(rateMax, x, y(0));
    return [
      series('p50'),
      series('p95'),
      series('p99'),
      limitLine(x0, width, y(marks.p99LimitMs), `p99 limit ${marks.p99LimitMs} ms`),
      vertical(marks.goalRate, COLORS.bar, `goal ${marks.goalRate}/s`, '2 4', 1),
      `<g id="sustained-rate">${vertical(marks.sustainedRate, COLORS.p50, `sustained ${marks.sustainedRate}/s`, '', 0)}</g>`,
      legend,
      ticks,
    ].join('\n');
  });
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${PANEL}" viewBox="0 0 ${WIDTH} ${PANEL}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    curve,
    `</svg>`,
    '',
  ].join('\n');
}
