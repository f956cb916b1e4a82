// A line chart as a standalone SVG document, for `dfss bench --svg`: one line per series, x on a log2 axis (the
// sequence lengths double), y linear from zero, a legend, and each point's value in a tooltip (<title>).

export interface ChartSeries {
  readonly label: string;
  readonly points: readonly { readonly x: number; readonly y: number }[];
  /** A CSS color. */
  readonly color: string;
  /** A stroke-dasharray ('' for solid). */
  readonly dash: string;
}

export interface LineChart {
  readonly title: string;
  readonly subtitle?: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly ChartSeries[];
}

const WIDTH = 760;
const HEIGHT = 460;
const MARGIN = { left: 70, right: 200, top: 64, bottom: 56 };

export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

/** A round step of about a fifth of `max`: 1, 2 or 5 times a power of ten. */
function niceStep(max: number): number {
  const raw = max / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  const mantissa = raw / power;
  return (mantissa <= 1 ? 1 : mantissa <= 2 ? 2 : mantissa <= 5 ? 5 : 10) * power;
}

function formatNumber(value: number): string {
  if (value === 0) return '0';
  if (Math.abs(value) >= 1000 || Math.abs(value) < 0.01) return value.toExponential(1);
  return String(Number(value.toPrecision(3)));
}

export function renderLineChart(chart: LineChart): string {
  const points = chart.series.flatMap((s) => s.points);
  const xs = [...new Set(points.map((p) => p.x))].sort((a, b) => a - b);
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const logMin = Math.log2(xs[0] ?? 1);
  const logMax = Math.log2(xs[xs.length - 1] ?? 2);
  const span = logMax > logMin ? logMax - logMin : 1;
  const xPosition = (x: number) =>
    MARGIN.left + (logMax > logMin ? ((Math.log2(x) - logMin) / span) * plotWidth : plotWidth / 2);
  const yMaxData = Math.max(0, ...points.map((p) => p.y));
  const step = yMaxData > 0 ? niceStep(yMaxData) : 1;
  const yMax = Math.max(step, Math.ceil(yMaxData / step) * step);
  const yPosition = (y: number) => MARGIN.top + plotHeight - (y / yMax) * plotHeight;
  const n = (value: number) => value.toFixed(1);

  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${MARGIN.left}" y="26" font-size="16" font-weight="bold">${escapeXml(chart.title)}</text>`,
  ];
  if (chart.subtitle) out.push(`<text x="${MARGIN.left}" y="46" fill="#555">${escapeXml(chart.subtitle)}</text>`);

  // Grid and y ticks.
  for (let y = 0; y <= yMax + step / 2; y += step) {
    const py = n(yPosition(y));
    out.push(`<line x1="${MARGIN.left}" y1="${py}" x2="${MARGIN.left + plotWidth}" y2="${py}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${MARGIN.left - 8}" y="${py}" text-anchor="end" dominant-baseline="middle">${formatNumber(y)}</text>`);
  }
  // x ticks at the measured lengths.
  for (const x of xs) {
    const px = n(xPosition(x));
    out.push(`<line x1="${px}" y1="${MARGIN.top}" x2="${px}" y2="${MARGIN.top + plotHeight}" stroke="#f0f0f0"/>`);
    out.push(`<text x="${px}" y="${MARGIN.top + plotHeight + 18}" text-anchor="middle">${x}</text>`);
  }
  out.push(
    `<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}" fill="none" stroke="#888"/>`,
    `<text x="${MARGIN.left + plotWidth / 2}" y="${HEIGHT - 14}" text-anchor="middle">${escapeXml(chart.xLabel)}</text>`,
    `<text transform="translate(18 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeXml(chart.yLabel)}</text>`,
  );

  chart.series.forEach((s, index) => {
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    const dash = s.dash ? ` stroke-dasharray="${s.dash}"` : '';
    out.push(`<g class="series" data-label="${escapeXml(s.label)}">`);
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2"${dash} points="${sorted.map((p) => `${n(xPosition(p.x))},${n(yPosition(p.y))}`).join(' ')}"/>`,
    );
    for (const p of sorted) {
      out.push(
        `<circle cx="${n(xPosition(p.x))}" cy="${n(yPosition(p.y))}" r="3" fill="${s.color}"><title>${escapeXml(`${s.label}, N=${p.x}: ${formatNumber(p.y)}`)}</title></circle>`,
      );
    }
    out.push('</g>');
    // Legend entry.
    const ly = MARGIN.top + 8 + index * 20;
    const lx = MARGIN.left + plotWidth + 16;
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 28}" y2="${ly}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 36}" y="${ly}" dominant-baseline="middle">${escapeXml(s.label)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
